package upstream

import (
	"fmt"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// catchUpWait is how many check intervals a catch-up waits for Status
// answers to compare, since it began or last compared, before it lets the
// member in anyway: the checks never keep a member out for want of
// information, and a member known to be behind is not let in because one
// reading came late.
const catchUpWait = 3

// returned is called when ep may take new connections again after a
// failed dial or failing checks, or after a restart its checks saw
// (applyFacts): it first catches up, when the pool can tell, then
// slow-starts.
func (p *Pool) returned(ep *Endpoint) {
	if !ep.active.Load() || !ep.healthy.Load() || ep.removed.Load() {
		return
	}
	p.noteArrival(ep)
	if !p.beginCatchUp(ep) {
		p.startSlowStart(ep)
	}
}

// beginCatchUp holds ep from new connections until its applied index is
// within lag-max of the cluster's, and has every member's Status asked
// meanwhile. It reports whether it did: not without the etcd check, with
// lag-max 0, or for a member that answers no Status.
func (p *Pool) beginCatchUp(ep *Endpoint) bool {
	hc := p.settings.Load().HealthCheck
	if hc.Type != config.CheckEtcd || hc.LagMax <= 0 || ep.check.Load() == nil {
		return false
	}
	if f := ep.facts.Load(); (f != nil && f.status == absent) || !p.hasOtherChecked(ep) {
		return false
	}
	if !ep.catchingUp.CompareAndSwap(false, true) {
		return true
	}
	now := time.Now().UnixNano()
	ep.catchUpSince.Store(now)
	ep.catchUpCompared.Store(now)
	p.wantStatusOfAll(hc.Interval)
	p.log.WithField("endpoint", ep.addr).Info("endpoint catching up: no new connections until it is within lag-max of the cluster")
	return true
}

// hasOtherChecked reports whether another endpoint of the pool is checked:
// without one, there is no applied index to compare with.
func (p *Pool) hasOtherChecked(ep *Endpoint) bool {
	for _, o := range p.Endpoints() {
		if o != ep && o.check.Load() != nil {
			return true
		}
	}
	return false
}

// wantStatusOfAll has the checks of every endpoint ask Status for the
// next catchUpWait intervals.
func (p *Pool) wantStatusOfAll(interval time.Duration) {
	until := time.Now().Add(catchUpWait * interval)
	for _, ep := range p.Endpoints() {
		if c := ep.check.Load(); c != nil {
			c.statusWanted.extend(until)
		}
	}
}

// checkCatchUp ends the catch-up of each endpoint that has caught up, or
// that can't be told.
func (p *Pool) checkCatchUp() {
	s := p.settings.Load()
	now := time.Now()
	for _, ep := range p.Endpoints() {
		if !ep.catchingUp.Load() {
			continue
		}
		if done, why := p.caughtUp(ep, s, now); done {
			p.endCatchUp(ep, why)
		}
	}
}

// caughtUp compares ep's applied index, read since its catch-up began,
// with the highest of the other members', read within two intervals, and
// says whether it is within lag-max, and why; with nothing to compare for
// catchUpWait intervals, it says so.
func (p *Pool) caughtUp(ep *Endpoint, s *Settings, now time.Time) (bool, string) {
	hc := s.HealthCheck
	since := time.Unix(0, ep.catchUpSince.Load())
	waited := now.Sub(time.Unix(0, ep.catchUpCompared.Load())) > catchUpWait*hc.Interval
	mine, ok := ep.appliedSince(since)
	ref, refOK := p.clusterApplied(ep, now.Add(-2*hc.Interval))
	switch {
	case (!ok || !refOK) && waited:
		return true, "no Status to compare, from it or the other members"
	case !ok || !refOK:
		return false, ""
	}
	lag := ref - min(mine, ref)
	ep.lag.Store(lag)
	ep.catchUpCompared.Store(now.UnixNano())
	if lag <= uint64(hc.LagMax) {
		return true, fmt.Sprintf("%d raft entries behind, lag-max %d", lag, hc.LagMax)
	}
	p.wantStatusOfAll(hc.Interval)
	return false, ""
}

// appliedSince returns ep's applied index when a Status read after since
// gave one.
func (ep *Endpoint) appliedSince(since time.Time) (uint64, bool) {
	f := ep.facts.Load()
	if f == nil || f.progress.at.Before(since) {
		return 0, false
	}
	return f.progress.applied, true
}

// clusterApplied returns the highest applied index of the pool's other
// endpoints, among Status answers read after after.
func (p *Pool) clusterApplied(ep *Endpoint, after time.Time) (uint64, bool) {
	var best uint64
	found := false
	for _, o := range p.Endpoints() {
		if f := o.facts.Load(); o != ep && f != nil && f.progress.at.After(after) {
			best, found = max(best, f.progress.applied), true
		}
	}
	return best, found
}

// endCatchUp lets ep take new connections, and starts its slow start.
func (p *Pool) endCatchUp(ep *Endpoint, why string) {
	if !ep.catchingUp.CompareAndSwap(true, false) {
		return
	}
	p.log.WithFields(map[string]any{"endpoint": ep.addr, "reason": why}).Info("endpoint caught up: it takes new connections")
	p.startSlowStart(ep)
}
