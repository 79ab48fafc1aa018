package upstream

import (
	"math/rand/v2"
	"time"
)

// slowStartWindow is an endpoint's slow start: from start to end its share
// of new connections grows in a straight line from none to full.
type slowStartWindow struct {
	start, end time.Time
}

// share is the share of its new connections the endpoint takes at now.
func (w *slowStartWindow) share(now time.Time) float64 {
	return min(1, float64(now.Sub(w.start))/float64(w.end.Sub(w.start)))
}

// startSlowStart gives ep, which returns after being down, a growing share
// of new connections over slow-start, so that the clients of a whole
// gateway don't land at once on a member that has just replayed its log
// (least-connections would send it every new client until it had as many
// as the others).
func (p *Pool) startSlowStart(ep *Endpoint) {
	d := p.settings.Load().SlowStart
	if d <= 0 {
		return
	}
	now := time.Now()
	ep.slowStart.Store(&slowStartWindow{start: now, end: now.Add(d)})
	p.log.WithFields(map[string]any{"endpoint": ep.addr, "slow-start": d}).Info("endpoint slow start: its share of new connections grows")
}

// anySlowStart reports whether an endpoint of eps is in its slow start,
// or was until the last pick.
func anySlowStart(eps []*Endpoint) bool {
	for _, ep := range eps {
		if ep.slowStart.Load() != nil {
			return true
		}
	}
	return false
}

// slowStartFilter drops from cands, for this pick, the endpoints in their
// slow start that the policy doesn't admit at their share now; when that
// leaves none, all stay. A slow start that is over ends here.
func (p *Pool) slowStartFilter(cands []*Endpoint) []*Endpoint {
	if !anySlowStart(cands) {
		return cands
	}
	now := time.Now()
	pol := p.policy.Load().Policy
	kept := make([]*Endpoint, 0, len(cands))
	for _, ep := range cands {
		w := ep.slowStart.Load()
		switch {
		case w == nil:
		case !now.Before(w.end):
			ep.slowStart.CompareAndSwap(w, nil)
		case !admitSlowStart(pol, w.share(now)):
			continue
		}
		kept = append(kept, ep)
	}
	if len(kept) == 0 {
		return cands
	}
	return kept
}

// slowStarter is a policy with its own rule for an endpoint in its slow
// start.
type slowStarter interface {
	// admitSlowStart reports whether an endpoint at share (0 to 1) is a
	// candidate for this pick.
	admitSlowStart(share float64) bool
}

// admitSlowStart applies pol's rule, else admits an endpoint with the
// probability of its share: round-robin and least-connections then give
// it that share of what they would.
func admitSlowStart(pol Policy, share float64) bool {
	if s, ok := pol.(slowStarter); ok {
		return s.admitSlowStart(share)
	}
	return rand.Float64() < share
}

// admitSlowStart implements slowStarter: sticky-random doesn't move to an
// endpoint in its slow start, since once there it would send it every new
// client.
func (*StickyRandom) admitSlowStart(float64) bool { return false }
