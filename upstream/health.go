package upstream

import (
	"fmt"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/sirupsen/logrus"
)

// HealthCheck configures a pool's active health checks.
type HealthCheck struct {
	// Type is config.CheckNone (the zero value means it too), config.CheckTCP or
	// config.CheckEtcd.
	Type config.CheckType
	// Interval is the time between the starts of two checks of an
	// endpoint; Timeout bounds one check.
	Interval, Timeout time.Duration
	// Fall is how many failed checks in a row mark an endpoint down; Rise
	// how many successful ones mark it up again.
	Fall, Rise int
	// LeaderlessMax is how long an etcd check may find a member without a
	// leader before it is marked down, whatever Fall says, and its
	// connections are closed as on-unhealthy says; 0 means
	// config.DefaultLeaderlessMax.
	LeaderlessMax time.Duration
	// LagMax is how many raft entries a returning member may be behind the
	// others and get new connections (catchup.go); 0 doesn't wait.
	LagMax int
	// SuspectAfter is how long bytes sent to the member on a proxied
	// connection may wait for an answer before the member's process is
	// asked at once whether it answers at all, with it as the timeout
	// (suspect.go); 0 asks nothing.
	SuspectAfter time.Duration
}

func (h HealthCheck) withDefaults() HealthCheck {
	if h.Type == "" {
		h.Type = config.CheckNone
	}
	if h.Interval <= 0 {
		h.Interval = config.DefaultCheckInterval
	}
	if h.Timeout <= 0 {
		// A check must end before the next one is due.
		h.Timeout = min(config.DefaultCheckTimeout, h.Interval)
	}
	if h.Fall < 1 {
		h.Fall = config.DefaultFall
	}
	if h.Rise < 1 {
		h.Rise = config.DefaultRise
	}
	if h.LeaderlessMax <= 0 {
		h.LeaderlessMax = config.DefaultLeaderlessMax
	}
	return h
}

// syncChecksLocked points every endpoint at the shared checker that its
// settings call for, or stops its checks when the type is config.CheckNone. The
// caller holds updateMu.
func (p *Pool) syncChecksLocked() {
	if p.closed {
		return
	}
	s := p.settings.Load()
	for _, ep := range p.Endpoints() {
		if s.HealthCheck.Type == config.CheckNone {
			p.stopChecksLocked(ep)
			continue
		}
		p.checkLocked(ep, p.checkKey(s, ep))
	}
}

// checkKey is the key of ep's checker under s.
func (p *Pool) checkKey(s *Settings, ep *Endpoint) checkKey {
	k := checkKey{addr: ep.addr, hc: s.HealthCheck, tls: tlsFor(s, ep.Record())}
	k.originate = k.tls.on && s.Originate != nil
	return k
}

// checkLocked makes ep hear the checker of key, leaving the one it had,
// whose verdict a new checker starts from. The caller holds updateMu.
func (p *Pool) checkLocked(ep *Endpoint, key checkKey) {
	old := ep.check.Load()
	if old != nil && old.key == key {
		return
	}
	if old != nil {
		old.unsubscribe(ep)
	}
	c := p.checkers.acquire(key, old)
	ep.check.Store(c)
	c.subscribe(ep, p)
	if old != nil {
		p.checkers.release(old)
	}
}

// releaseChecksLocked makes ep leave its checker, if any, and reports
// whether it had one. The caller holds updateMu.
func (p *Pool) releaseChecksLocked(ep *Endpoint) bool {
	c := ep.check.Swap(nil)
	if c == nil {
		return false
	}
	c.unsubscribe(ep)
	p.checkers.release(c)
	return true
}

// stopChecksLocked stops ep's health checks and forgets their verdict: the
// endpoint is healthy again, and when a failed dial left it inactive, the
// retry-delay probe takes over. The caller holds updateMu.
func (p *Pool) stopChecksLocked(ep *Endpoint) {
	if !p.releaseChecksLocked(ep) || ep.removed.Load() {
		return
	}
	ep.checkErr.Store(nil)
	ep.forgetReadiness()
	if ep.healthy.CompareAndSwap(false, true) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "reason": "health checks turned off"}).Info("endpoint healthy")
	}
	if !ep.active.Load() {
		p.startProbe(ep)
	}
}

// setStatus implements statusSetter: it makes the transitions that the
// verdict about ep calls for. The verdict going healthy marks ep healthy;
// rise successes in a row also mark it active again when a failed dial had
// deactivated it; the verdict going unhealthy marks ep unhealthy, and the
// pool applies its own on-unhealthy to ep's connections.
func (p *Pool) setStatus(ep *Endpoint, v verdict) {
	log := p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "check": v.hc.Type})
	if v.reason == "" {
		ep.checkErr.Store(nil)
	} else {
		ep.checkErr.Store(&v.reason)
	}
	if v.reason != "" && v.fresh {
		log.WithFields(logrus.Fields{"failures": -v.streak, "error": v.reason}).Debug("health check failed")
	}
	p.applyFacts(ep, v, log)
	closing := p.leaderlessSpell(ep, v, log)
	if v.healthy {
		p.setHealthy(ep, v, log)
	} else if ep.healthy.CompareAndSwap(true, false) {
		log.WithFields(logrus.Fields{"reason": v.reason, "failures": -v.streak}).Warn("endpoint unhealthy")
		closing = true
	}
	if closing {
		p.onUnhealthy(ep, log)
	}
}

// setHealthy marks ep healthy, and active again after rise successes in a
// row.
func (p *Pool) setHealthy(ep *Endpoint, v verdict, log logrus.FieldLogger) {
	reason := "health check passed"
	if v.streak > 1 {
		reason = fmt.Sprintf("%d health checks passed in a row", v.streak)
	}
	if ep.healthy.CompareAndSwap(false, true) {
		log.WithField("reason", reason).Info("endpoint healthy")
		p.returned(ep)
	}
	if v.streak >= v.hc.Rise {
		p.markUp(ep, reason)
	}
}

// onUnhealthy applies on-unhealthy to the open connections of ep, which
// just went unhealthy. With close they are closed, spread over a moment,
// but only when another endpoint is up to take their clients: closing them
// when every member is down would only make clients reconnect to a member
// as bad.
func (p *Pool) onUnhealthy(ep *Endpoint, log logrus.FieldLogger) {
	if p.settings.Load().OnUnhealthy != config.UnhealthyClose {
		return
	}
	n := ep.OpenConns()
	if n == 0 {
		return
	}
	for _, other := range p.Endpoints() {
		if other != ep && other.Up() {
			log.WithField("connections", n).Info("on-unhealthy close: closing the unhealthy endpoint's connections")
			ep.closeConns(closeSpread)
			return
		}
	}
	log.WithField("connections", n).Warn("on-unhealthy close: no healthy endpoint to move the connections to; they are kept")
}
