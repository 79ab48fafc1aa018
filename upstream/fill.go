package upstream

import (
	"math/rand/v2"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
)

const (
	// fillSettle is how long after its coin toss a gateway waits before it
	// looks for a vacant member: its own moves take a few rounds, and so
	// do those of the gateways that tossed with it.
	fillSettle = 3 * moveEvery
	// fillJitter is, in check intervals, the span over which the
	// gateways that see a vacant member spread their moments: the first
	// to fill it is seen by the later ones, in the member's counters, a
	// few intervals after.
	fillJitter = 16
	// fillsPerToss is how many times a gateway may fill after one toss: a
	// fill that left its own member vacant, with another gateway filling
	// at the same moment, is mended by a later one.
	fillsPerToss = 3
	// fillLook is, in check intervals, how long after fillSettle a
	// gateway keeps looking: room for fillsPerToss fills, one after the
	// other.
	fillLook = fillsPerToss * (fillJitter + 4)
)

// fillState is sticky-random's second chance for a fleet of gateways.
// Each gateway tosses its coin alone (tossForArrivals), so now and then
// the fleet leaves a member that no gateway uses. The members' own
// counters show it (clientRPCs): for a while after each toss, a gateway
// on a member busier than the mean draws a random moment, and then, if
// the member is still vacant, moves its clients there with the chance
// fillChance. Guarded by the pool's moveMu.
type fillState struct {
	// from and until bound the look after the last toss.
	from, until time.Time
	// at is the gateway's next moment; zero while it sees no vacancy.
	at time.Time
	// fills counts its fills since the toss.
	fills int
}

// openFill starts the look for a vacant member after a toss at now, and
// has the checks of every member up read its client RPCs meanwhile. The
// caller holds moveMu.
func (p *Pool) openFill(up []*Endpoint, now time.Time) {
	hc := p.settings.Load().HealthCheck
	if hc.Type != config.CheckEtcd {
		return
	}
	from := now.Add(fillSettle)
	p.fill = fillState{from: from, until: from.Add(fillLook * hc.Interval)}
	for _, ep := range up {
		if c := ep.check.Load(); c != nil {
			c.rpcsWanted.extend(p.fill.until)
		}
	}
}

// fillVacant moves the gateway's pick to a vacant member when its moment
// comes (fillState), with a reading made since that shows it still
// vacant, and its coin says so.
func (p *Pool) fillVacant(st *StickyRandom, up []*Endpoint, now time.Time) {
	p.moveMu.Lock()
	defer p.moveMu.Unlock()
	f := &p.fill
	if now.Before(f.from) || !now.Before(f.until) || f.fills >= fillsPerToss {
		return
	}
	cur := st.current.Load()
	v := vacantMember(up, cur, f.from, now)
	switch {
	case v == nil || cur == nil || cur.OpenConns() == 0:
		f.at = time.Time{}
	case f.at.IsZero():
		f.at = now.Add(rand.N(fillJitter * p.settings.Load().HealthCheck.Interval))
	case now.After(f.at) && v.facts.Load().rpcs.at.After(f.at):
		f.at = time.Time{} // drawn: the next vacancy draws anew
		if rand.Float64() < fillChance(up, cur, f.from) {
			p.log.WithField("endpoint", v.addr).Info("no client uses the member: this gateway's clients move to it")
			st.current.Store(v)
			p.stickyMoving.Store(true)
			f.fills++
		}
	}
}

// workSince returns ep's client work between its last two readings, both
// made after since, and whether there are two such.
func (ep *Endpoint) workSince(since time.Time) (int64, bool) {
	f := ep.facts.Load()
	if f == nil || f.metrics != present || f.prevRPCs.at.Before(since) {
		return 0, false
	}
	return f.rpcs.workSince(f.prevRPCs), true
}

// vacantMember returns a member of up other than cur that sticky-random
// would pick, meant to carry at least half an even share by its weight,
// and whose clients did no work between two readings since since; nil
// when there is none. A member of weight 0 beside heavier ones is meant
// to be vacant.
func vacantMember(up []*Endpoint, cur *Endpoint, since, now time.Time) *Endpoint {
	for _, ep := range up {
		if ep == cur || slowStartShare(ep, now) < 1 || stickyMoveChance(ep, up) < 0.5/float64(len(up)) {
			continue
		}
		if work, ok := ep.workSince(since); ok && work == 0 {
			return ep
		}
	}
	return nil
}

// fillChance is the chance that a gateway on cur moves to a vacant
// member at its moment: cur's work beyond the mean of up's, over cur's
// work; none at or below the mean. The gateways on cur, each with an even
// part of its work, then send the surplus away in expectation, and
// seldom all of cur's: a gateway alone on a member at the mean stays.
func fillChance(up []*Endpoint, cur *Endpoint, since time.Time) float64 {
	mine, ok := cur.workSince(since)
	if !ok || mine == 0 {
		return 0
	}
	var total, n int64
	for _, ep := range up {
		if work, ok := ep.workSince(since); ok {
			total, n = total+work, n+1
		}
	}
	return max(0, float64(mine*n-total)/float64(mine*n))
}
