package upstream

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// Health-check types.
const (
	// CheckNone runs no check: only failed dials take an endpoint out, as
	// in etcd's gateway.
	CheckNone = "none"
	// CheckTCP connects to the endpoint within the timeout.
	CheckTCP = "tcp"
	// CheckEtcd asks the member's GET /health on its client port.
	CheckEtcd = "etcd"
)

// What a pool does with the open connections of an endpoint whose health
// checks mark it down.
const (
	UnhealthyKeep  = "keep"
	UnhealthyClose = "close"
)

// Defaults of HealthCheck fields left zero.
const (
	DefaultCheckInterval = 5 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
	DefaultFall          = 2
	DefaultRise          = 2
)

// HealthCheck configures a pool's active health checks.
type HealthCheck struct {
	// Type is CheckNone (the zero value means it too), CheckTCP or
	// CheckEtcd.
	Type string
	// Interval is the time between the starts of two checks of an
	// endpoint; Timeout bounds one check.
	Interval, Timeout time.Duration
	// Fall is how many failed checks in a row mark an endpoint down; Rise
	// how many successful ones mark it up again.
	Fall, Rise int
}

func (h HealthCheck) withDefaults() HealthCheck {
	if h.Type == "" {
		h.Type = CheckNone
	}
	if h.Interval <= 0 {
		h.Interval = DefaultCheckInterval
	}
	if h.Timeout <= 0 {
		// A check must end before the next one is due.
		h.Timeout = min(DefaultCheckTimeout, h.Interval)
	}
	if h.Fall < 1 {
		h.Fall = DefaultFall
	}
	if h.Rise < 1 {
		h.Rise = DefaultRise
	}
	return h
}

// syncChecksLocked starts the health checks of every endpoint that has
// none, or stops them all when the type is CheckNone. The caller holds
// updateMu.
func (p *Pool) syncChecksLocked() {
	checking := p.settings.Load().HealthCheck.Type != CheckNone
	for _, ep := range p.Endpoints() {
		switch {
		case checking && ep.checkStop == nil:
			ctx, cancel := context.WithCancel(p.ctx)
			ep.checkStop = cancel
			go p.runChecks(ctx, ep)
		case !checking && ep.checkStop != nil:
			p.stopChecksLocked(ep)
		}
	}
}

// stopChecksLocked stops ep's health checks and forgets their verdict: the
// endpoint is healthy again, and when a failed dial left it inactive, the
// retry-delay probe takes over. The caller holds updateMu.
func (p *Pool) stopChecksLocked(ep *Endpoint) {
	if ep.checkStop == nil {
		return
	}
	ep.checkStop()
	ep.checkStop = nil
	if ep.removed.Load() {
		return
	}
	ep.healthMu.Lock()
	ep.streak.Store(0)
	ep.checkErr.Store(nil)
	if ep.healthy.CompareAndSwap(false, true) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "reason": "health checks turned off"}).Info("endpoint healthy")
	}
	ep.healthMu.Unlock()
	if !ep.active.Load() {
		p.startProbe(ep)
	}
}

// runChecks checks ep every interval until ctx is done. The first check
// runs at once. Interval, timeout, fall and rise are read afresh for each
// check, so a reload applies from the next one.
func (p *Pool) runChecks(ctx context.Context, ep *Endpoint) {
	for {
		hc := p.settings.Load().HealthCheck
		if hc.Type == CheckNone {
			return // being stopped
		}
		start := time.Now()
		err := p.checkOnce(ctx, hc, ep)
		ep.timings.observeCheck(start, err)
		p.recordCheck(ctx, ep, hc, err)
		t := time.NewTimer(time.Until(start.Add(hc.Interval)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// recordCheck counts one check result and makes the transitions it calls
// for: fall failures in a row mark ep unhealthy, rise successes in a row
// mark it healthy and, when a failed dial had deactivated it, active again.
func (p *Pool) recordCheck(ctx context.Context, ep *Endpoint, hc HealthCheck, err error) {
	ep.healthMu.Lock()
	defer ep.healthMu.Unlock()
	if ctx.Err() != nil {
		return // stopped meanwhile: the verdict is stale
	}
	log := p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "check": hc.Type})
	if err == nil {
		ep.checkErr.Store(nil)
		n := ep.addResult(true)
		if n < int64(hc.Rise) {
			return
		}
		reason := "health check passed"
		if n > 1 {
			reason = fmt.Sprintf("%d health checks passed in a row", n)
		}
		if ep.healthy.CompareAndSwap(false, true) {
			log.WithField("reason", reason).Info("endpoint healthy")
		}
		p.markUp(ep, reason)
		return
	}
	msg := err.Error()
	ep.checkErr.Store(&msg)
	n := -ep.addResult(false)
	log.WithError(err).WithField("failures", n).Debug("health check failed")
	if n < int64(hc.Fall) {
		return
	}
	if ep.healthy.CompareAndSwap(true, false) {
		log.WithFields(logrus.Fields{"reason": msg, "failures": n}).Warn("endpoint unhealthy")
		p.onUnhealthy(ep, log)
	}
}

// onUnhealthy applies on-unhealthy to the open connections of ep, which
// just went unhealthy. With close they are closed, spread over a moment,
// but only when another endpoint is up to take their clients: closing them
// when every member is down would only make clients reconnect to a member
// as bad.
func (p *Pool) onUnhealthy(ep *Endpoint, log logrus.FieldLogger) {
	if p.settings.Load().OnUnhealthy != UnhealthyClose {
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
