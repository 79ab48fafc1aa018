package upstream

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// MoveReason says why the gateway moved a connection (sent it a GOAWAY,
// or closed it while quiet).
type MoveReason string

// The reasons for a move.
const (
	MoveRebalance MoveReason = "rebalance"
	MoveMaxAge    MoveReason = "max-age"
	MoveDrain     MoveReason = "drain"
)

// MoveCounts counts an endpoint's moved connections by reason.
type MoveCounts struct{ Rebalance, MaxAge, Drain uint64 }

// moveCounters is an endpoint's MoveCounts as they grow.
type moveCounters struct{ rebalance, maxAge, drain atomic.Uint64 }

func (m *moveCounters) add(r MoveReason) {
	switch r {
	case MoveRebalance:
		m.rebalance.Add(1)
	case MoveMaxAge:
		m.maxAge.Add(1)
	case MoveDrain:
		m.drain.Add(1)
	}
}

func (m *moveCounters) load() MoveCounts {
	return MoveCounts{Rebalance: m.rebalance.Load(), MaxAge: m.maxAge.Load(), Drain: m.drain.Load()}
}

const (
	// quietWindow is how long both ways of a connection must have been
	// silent, the member having spoken last, for a move to close it: an
	// answer written in several pieces has shorter gaps, and a client
	// that thinks between requests is closed early in its pause, not
	// late, when its next request is nearer.
	quietWindow = 10 * time.Millisecond
	// quietPoll is how often a move looks for a quiet moment: well within
	// quietWindow, so that a pause is caught near its start.
	quietPoll = 2 * time.Millisecond
	// newConn is how long a connection is too new to move: a client
	// that just connected is about to send what it connected for, and a
	// connection that has carried nothing yet looks quiet.
	newConn = time.Second
	// moveEvery is the mean time between two rounds of moves; each is
	// jittered by half of it either way, so that gateways started
	// together don't move their clients in step.
	moveEvery = time.Second
	// moveDeadline is how long a round waits for its connections to be
	// quiet; one never quiet by then is left for a later round, not cut.
	moveDeadline = time.Second
	// goAwayGrace is how long a connection sent a GOAWAY is left to its
	// client before the mover closes it when quiet: time for the client
	// to read the GOAWAY, after which it sends nothing new on it; what it
	// sent before is owed an answer, and so not quiet. Its long streams
	// (watches) would never end by themselves, and a close costs them a
	// new stream on the new connection, not a failed request.
	goAwayGrace = time.Second
	// maxAgeJitter is the part of max-connection-age by which each
	// connection's own limit differs, either way, as gRPC's
	// MAX_CONNECTION_AGE does.
	maxAgeJitter = 0.1
)

// roundBudget is how many connections one round may move in a pool of
// total: a tenth, at least two and at most a hundred, so that the
// clients of a busy gateway reconnect a few at a time, never as a storm.
func roundBudget(total int64) int {
	return int(min(max(total/10, 2), 100))
}

// moveSet is what a round may move off one endpoint: up to want of conns
// (all when negative), each once it is quiet.
type moveSet struct {
	ep     *Endpoint
	conns  []*tracked
	want   int
	reason MoveReason
}

// moveNow moves the connections of s, up to what s still wants,
// counting each as a move; it returns how many. A connection that speaks
// plaintext HTTP/2 is sent a GOAWAY at once and left for its client to
// close; any other is closed when quiet.
func (s *moveSet) moveNow(now time.Time) int {
	n := 0
	for _, t := range s.conns {
		if s.want == 0 {
			break
		}
		if t.moving.Load() || now.Sub(t.since) < newConn || !t.moving.CompareAndSwap(false, true) {
			continue
		}
		if !t.move(now) {
			t.moving.Store(false)
			continue
		}
		s.ep.moves.add(s.reason)
		n++
		s.want--
	}
	return n
}

// move ends the connection the way that fails no request, and reports
// whether it could now: a GOAWAY for HTTP/2, else a close if quiet.
func (t *tracked) move(now time.Time) bool {
	if t.c.GoAway() {
		t.away.Store(now.UnixNano())
		return true
	}
	return t.c.CloseIfQuiet(quietWindow)
}

// closeLingering closes, each when quiet, the connections of ep that a
// GOAWAY moved more than goAwayGrace ago and that are still open: their
// clients keep long streams (watches, lease keep-alives) on them, which
// a close costs a new stream, not a failed request.
func (ep *Endpoint) closeLingering(now time.Time) {
	ep.conns.Range(func(k, _ any) bool {
		t := k.(*tracked)
		if at := t.away.Load(); at != 0 && now.Sub(time.Unix(0, at)) >= goAwayGrace {
			t.c.CloseIfQuiet(quietWindow)
		}
		return true
	})
}

// sweep moves what sets want, looking for quiet moments every quietPoll
// until all is moved or ctx ends; it returns how many it moved.
func sweep(ctx context.Context, sets []moveSet) int {
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	moved := 0
	for {
		left := false
		now := time.Now()
		for i := range sets {
			moved += sets[i].moveNow(now)
			left = left || sets[i].want != 0
		}
		if !left {
			return moved
		}
		select {
		case <-ctx.Done():
			return moved
		case <-tick.C:
		}
	}
}

// switchMoverLocked starts the pool's rounds of moves when on, and stops
// them when not. The caller holds updateMu.
func (p *Pool) switchMoverLocked(on bool) {
	switch {
	case on && p.stopMover == nil:
		ctx, cancel := context.WithCancel(p.ctx)
		p.stopMover = cancel
		go p.moveLoop(ctx)
	case !on && p.stopMover != nil:
		p.stopMover()
		p.stopMover = nil
	}
}

// moveLoop runs a round of moves every moveEvery, jittered, until ctx
// ends.
func (p *Pool) moveLoop(ctx context.Context) {
	for sleepUntil(ctx, time.Now().Add(moveEvery/2+rand.N(moveEvery))) {
		p.moveRound(ctx)
	}
}

// moveRound moves, within moveDeadline, the connections past
// max-connection-age and those that rebalancing takes off the busiest
// endpoints: one sweep, so that a connection is closed for one reason
// only.
func (p *Pool) moveRound(ctx context.Context) {
	s := p.settings.Load()
	now := time.Now()
	for _, ep := range p.Endpoints() {
		ep.closeLingering(now)
	}
	var sets []moveSet
	if s.MaxConnectionAge > 0 {
		sets = p.agedSets(sets, s.MaxConnectionAge, now)
	}
	if s.Rebalance {
		sets = p.rebalanceSets(sets, now)
	}
	if len(sets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, moveDeadline)
	defer cancel()
	sweep(ctx, sets)
}

// agedSets adds to sets the connections past their max-connection-age,
// up to a round's budget; a drained endpoint's are its drain's.
func (p *Pool) agedSets(sets []moveSet, age time.Duration, now time.Time) []moveSet {
	budget := roundBudget(p.openConns())
	for _, ep := range p.Endpoints() {
		if budget == 0 || ep.drained.Load() {
			continue
		}
		old := ep.trackedWhere(func(t *tracked) bool { return now.Sub(t.since) >= t.maxAge(age) })
		if len(old) == 0 {
			continue
		}
		want := min(len(old), budget)
		budget -= want
		sets = append(sets, moveSet{ep: ep, conns: old, want: want, reason: MoveMaxAge})
	}
	return sets
}

// maxAge is age with the connection's own jitter.
func (t *tracked) maxAge(age time.Duration) time.Duration {
	return time.Duration(float64(age) * t.ageJitter)
}

// openConns is the number of connections open to the pool's endpoints.
func (p *Pool) openConns() int64 {
	var n int64
	for _, ep := range p.Endpoints() {
		n += ep.OpenConns()
	}
	return n
}

// trackedWhere returns the endpoint's tracked connections that no move
// took yet and keep says to.
func (ep *Endpoint) trackedWhere(keep func(*tracked) bool) []*tracked {
	var out []*tracked
	ep.conns.Range(func(k, _ any) bool {
		if t := k.(*tracked); !t.moving.Load() && keep(t) {
			out = append(out, t)
		}
		return true
	})
	return out
}

// sample returns up to n of the endpoint's connections that no move took
// yet, at random, so that a round doesn't always try the same ones.
func (ep *Endpoint) sample(n int) []*tracked {
	all := ep.trackedWhere(func(*tracked) bool { return true })
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all[:min(n, len(all))]
}
