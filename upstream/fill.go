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
	// gateways that see a vacant member spread their decisions: the first
	// fills it, and the later ones read it filled.
	fillJitter = 8
	// fillLook is, in check intervals, how long after fillSettle a
	// gateway keeps looking: two readings, the jitter and a margin.
	fillLook = 12
)

// fillState is sticky-random's second chance for a fleet of gateways.
// Each gateway tosses its coin alone (tossForArrivals), so now and then
// the fleet leaves a member that no gateway uses. The members' own
// counters show it (clientRPCs): for a while after each toss, a gateway
// on a busy member moves its clients to a vacant member, at a random
// moment, if the member is still vacant then. Guarded by the pool's
// moveMu.
type fillState struct {
	// from and until bound the look after the last toss.
	from, until time.Time
	// at is when the gateway fills the vacant member it saw; zero while it
	// sees none.
	at time.Time
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

// fillVacant moves the gateway's pick to a vacant member when it is time
// (fillState). A gateway fills at most once per toss, and only from a
// member busier than the mean, so that it doesn't leave its own vacant.
func (p *Pool) fillVacant(st *StickyRandom, up []*Endpoint, now time.Time) {
	p.moveMu.Lock()
	defer p.moveMu.Unlock()
	f := &p.fill
	if now.Before(f.from) || !now.Before(f.until) {
		return
	}
	cur := st.current.Load()
	v := vacantMember(up, cur, f.from, now)
	switch {
	case v == nil || cur == nil || cur.OpenConns() == 0 || !busierThanMean(up, cur, f.from):
		f.at = time.Time{}
	case f.at.IsZero():
		interval := p.settings.Load().HealthCheck.Interval
		f.at = now.Add(rand.N(fillJitter * interval))
	case now.After(f.at) && v.facts.Load().rpcs.at.After(f.at):
		p.log.WithField("endpoint", v.addr).Info("no client uses the member: this gateway's clients move to it")
		st.current.Store(v)
		p.stickyMoving.Store(true)
		*f = fillState{}
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
		if ep == cur || slowStartShare(ep, now) < 1 || 2*len(up)*int(stickyMoveChance(ep, up)*1e6) < 1e6 {
			continue
		}
		if work, ok := ep.workSince(since); ok && work == 0 {
			return ep
		}
	}
	return nil
}

// busierThanMean reports whether cur's clients did at least the mean work
// of up's, and some.
func busierThanMean(up []*Endpoint, cur *Endpoint, since time.Time) bool {
	mine, ok := cur.workSince(since)
	if !ok || mine == 0 {
		return false
	}
	var total, n int64
	for _, ep := range up {
		if work, ok := ep.workSince(since); ok {
			total, n = total+work, n+1
		}
	}
	return mine*n >= total
}
