package upstream

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

const (
	// spreadBound is how far past its share an endpoint's load may grow
	// before a round moves connections off it, when no member returned.
	spreadBound = 1.25
	// evenSlack is how close to its share a rebalance brings every
	// endpoint: a little above 1, so that the last connection or two are
	// not moved back and forth.
	evenSlack = 1.1
	// sampleMin is the fewest connections of an endpoint a round watches
	// for a quiet moment: more than it wants to move, since some are busy.
	sampleMin = 16
)

// noteArrival records that ep returned or joined: rounds rebalance
// toward it, and sticky-random tosses its coin for it (stickySets).
func (p *Pool) noteArrival(ep *Endpoint) {
	p.rebalanceDue.Store(true)
	p.moveMu.Lock()
	defer p.moveMu.Unlock()
	if !slices.Contains(p.arrivals, ep) {
		p.arrivals = append(p.arrivals, ep)
	}
}

// rebalanceSets adds to sets the moves of a round of rebalancing among
// the endpoints that are up, of the best SRV priority, as the policy
// would spread them. A policy of its own (Options.Policy) is left alone:
// its clients would come back where they were.
func (p *Pool) rebalanceSets(sets []moveSet, now time.Time) []moveSet {
	up := upBest(p.Endpoints())
	if len(up) < 2 {
		return sets
	}
	switch pol := p.policy.Load().Policy.(type) {
	case *StickyRandom:
		return p.stickySets(sets, pol, up, now)
	case *RoundRobin, LeastConnections:
		return p.evenSets(sets, up, now)
	}
	return sets
}

// upBest returns the endpoints of eps that are up, of the best SRV
// priority among them.
func upBest(eps []*Endpoint) []*Endpoint {
	var out []*Endpoint
	for _, ep := range eps {
		switch {
		case !ep.Up():
		case len(out) == 0 || ep.priority() < out[0].priority():
			out = append(out[:0], ep)
		case ep.priority() == out[0].priority():
			out = append(out, ep)
		}
	}
	return out
}

// balance is the load of each endpoint that is up and its share of the
// total: by SRV weight, and by its slow start, so that moves into a
// returning member grow as its share of new connections does.
type balance struct {
	eps     []*Endpoint
	loads   []int64
	targets []float64
}

func balanceOf(up []*Endpoint, now time.Time) balance {
	s := balance{eps: up, loads: make([]int64, len(up)), targets: make([]float64, len(up))}
	caps := make([]float64, len(up))
	var total int64
	var capSum float64
	for i, ep := range up {
		s.loads[i] = ep.OpenConns()
		total += s.loads[i]
		caps[i] = float64(effectiveWeight(ep.weight())) * slowStartShare(ep, now)
		capSum += caps[i]
	}
	for i := range up {
		s.targets[i] = float64(total) * caps[i] / capSum // NaN when every share is 0: evenSets waits
	}
	return s
}

// slowStartShare is ep's share of its new connections at now: 1 outside
// a slow start.
func slowStartShare(ep *Endpoint, now time.Time) float64 {
	if w := ep.slowStart.Load(); w != nil && now.Before(w.end) {
		return w.share(now)
	}
	return 1
}

// over returns how many connections endpoint i holds beyond its share
// times factor, rounded up.
func (s balance) over(i int, factor float64) int {
	return int(s.loads[i] - int64(math.Ceil(s.targets[i]*factor)))
}

// evenSets adds to sets the moves of a round of least-connections or
// round-robin: when a member returned or joined, or an endpoint is past
// spreadBound times its share, the connections beyond evenSlack times
// their share, from the busiest endpoint first, up to a round's budget.
// The policy sends the moved clients to the least busy, or in turn.
func (p *Pool) evenSets(sets []moveSet, up []*Endpoint, now time.Time) []moveSet {
	s := balanceOf(up, now)
	if slices.ContainsFunc(s.targets, math.IsNaN) {
		return sets
	}
	if !p.rebalanceDue.Load() && !s.pastBound() {
		return sets
	}
	order := s.busiestFirst()
	budget, moved := roundBudget(sum(s.loads)), false
	for _, i := range order {
		want := min(s.over(i, evenSlack), budget)
		if want <= 0 {
			continue
		}
		budget -= want
		moved = true
		sets = append(sets, moveSet{ep: up[i], conns: up[i].sample(max(4*want, sampleMin)), want: want, reason: MoveRebalance})
	}
	if !moved && !slices.ContainsFunc(up, func(ep *Endpoint) bool { return slowStartShare(ep, now) < 1 }) {
		p.rebalanceDue.Store(false) // even: until the next arrival or the bound
	}
	return sets
}

// pastBound reports whether an endpoint holds more than spreadBound
// times its share.
func (s balance) pastBound() bool {
	for i := range s.eps {
		if s.over(i, spreadBound) > 0 {
			return true
		}
	}
	return false
}

// busiestFirst returns the indexes of s's endpoints by load over share,
// the highest first.
func (s balance) busiestFirst() []int {
	order := make([]int, len(s.eps))
	for i := range order {
		order[i] = i
	}
	ratio := func(i int) float64 { return float64(s.loads[i]) / max(s.targets[i], 1e-9) }
	slices.SortFunc(order, func(a, b int) int { return -cmpFloat(ratio(a), ratio(b)) })
	return order
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// stickySets adds to sets the moves of a round of sticky-random: once a
// returning member won its coin toss (tossForArrivals), the connections
// on the other endpoints that are up, up to a round's budget, so that the
// gateway's clients follow its new pick, as they would have had they
// connected now.
func (p *Pool) stickySets(sets []moveSet, st *StickyRandom, up []*Endpoint, now time.Time) []moveSet {
	p.tossForArrivals(st, up, now)
	if !p.stickyMoving.Load() {
		p.fillVacant(st, up, now)
	}
	if !p.stickyMoving.Load() {
		return sets
	}
	cur := st.current.Load()
	if !slices.Contains(up, cur) {
		p.stickyMoving.Store(false) // the pick went down: it moved on already
		return sets
	}
	budget, moved := roundBudget(p.openConns()), false
	for _, ep := range up {
		n := min(int(ep.OpenConns()), budget)
		if ep == cur || n <= 0 {
			continue
		}
		budget -= n
		moved = true
		sets = append(sets, moveSet{ep: ep, conns: ep.sample(max(4*n, sampleMin)), want: n, reason: MoveRebalance})
	}
	if !moved {
		p.stickyMoving.Store(false)
	}
	return sets
}

// tossForArrivals decides, for each member that returned or joined and
// that sticky-random would now pick (up, its slow start over), whether
// this gateway moves its clients there: with the probability
// stickyMoveChance, so that a fleet of gateways, each with all its
// clients on one member, spreads evenly (docs/design.md).
func (p *Pool) tossForArrivals(st *StickyRandom, up []*Endpoint, now time.Time) {
	p.moveMu.Lock()
	defer p.moveMu.Unlock()
	kept := p.arrivals[:0]
	for _, ep := range p.arrivals {
		switch {
		case ep.removed.Load():
		case !slices.Contains(up, ep) || slowStartShare(ep, now) < 1:
			kept = append(kept, ep) // not yet a pick of sticky-random
		default:
			p.toss(st, ep, up, now)
		}
	}
	clear(p.arrivals[len(kept):])
	p.arrivals = kept
}

// toss moves the gateway's clients to ep, which arrived among up, with
// the probability stickyMoveChance, then looks for a member the fleet's
// tosses left vacant (fill.go). The caller holds moveMu.
func (p *Pool) toss(st *StickyRandom, ep *Endpoint, up []*Endpoint, now time.Time) {
	if rand.Float64() < stickyMoveChance(ep, up) {
		st.current.Store(ep)
		p.stickyMoving.Store(true)
	}
	p.openFill(up, now)
}

// stickyMoveChance is the probability that a gateway moves its clients to
// ep, which arrived among up: ep's share of up by weight, the share it
// would have had, had every gateway picked anew.
func stickyMoveChance(ep *Endpoint, up []*Endpoint) float64 {
	var total uint64
	for _, e := range up {
		total += effectiveWeight(e.weight())
	}
	return float64(effectiveWeight(ep.weight())) / float64(total)
}
