package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// Dial levels: which endpoints a round of picks considers.
const (
	levelUp     = iota // active and healthy: the normal case
	levelActive        // none was up: active ones, health ignored
	levelAny           // none of those answered: every endpoint left
)

// Dial connects to an endpoint of the pool for one new client connection.
// It picks with the policy among the endpoints that are up, of the best SRV
// priority; when a dial fails it marks that endpoint inactive and tries the
// next, so the client never sees the failure. When no endpoint that is up
// answers, it tries the unhealthy ones whose dials worked, then every other
// endpoint, once each: health checks alone never make the gateway refuse a
// client, and a member which came back is used at once rather than after
// the retry delay.
func (p *Pool) Dial(ctx context.Context) (net.Conn, *Endpoint, error) {
	plan, err := p.Plan()
	if err != nil {
		return nil, nil, err
	}
	s := p.settings.Load()
	for {
		ep, addr, ok := plan.next()
		if !ok {
			return nil, nil, plan.Err()
		}
		conn, err := p.dialOne(ctx, s, ep, addr)
		if err == nil {
			plan.Connected()
			return conn, ep, nil
		}
		plan.failed(err, ctx.Err() != nil)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
}

// countFailover counts a connection served after a failed dial, which
// lastErr is when not nil.
func (p *Pool) countFailover(lastErr error) {
	if lastErr != nil {
		p.failovers.Add(1)
	}
}

// pick returns the policy's choice among the untried endpoints that level
// admits, of the lowest SRV priority present, or nil when there is none.
func (p *Pool) pick(eps, tried []*Endpoint, level int) *Endpoint {
	if allCandidates(eps, tried, level) && !anySlowStart(eps) {
		return p.policy.Load().Pick(eps) // the usual case, without a copy
	}
	// buf escapes through the Policy interface: one allocation, only here.
	var buf [16]*Endpoint
	candidates := buf[:0]
	best := -1
	for _, ep := range eps {
		if !admits(level, ep) || contains(tried, ep) {
			continue
		}
		switch prio := int(ep.priority()); {
		case best == -1 || prio < best:
			best = prio
			candidates = append(candidates[:0], ep)
		case prio == best:
			candidates = append(candidates, ep)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	if level == levelUp {
		candidates = p.slowStartFilter(candidates)
	}
	return p.policy.Load().Pick(candidates)
}

// allCandidates reports whether every endpoint of eps is a candidate: the
// pool has some, level admits them all, none was tried, all are of one
// priority. Then the pool's own immutable slice goes to the policy as it is.
func allCandidates(eps, tried []*Endpoint, level int) bool {
	if len(eps) == 0 || len(tried) > 0 {
		return false
	}
	prio := eps[0].priority()
	for _, ep := range eps {
		if !admits(level, ep) || ep.priority() != prio {
			return false
		}
	}
	return true
}

func admits(level int, ep *Endpoint) bool {
	if ep.removed.Load() || ep.drained.Load() {
		return false
	}
	switch level {
	case levelUp:
		return ep.active.Load() && ep.healthy.Load() && ep.ready()
	case levelActive:
		return ep.active.Load() && !ep.learner.Load()
	default:
		return !ep.learner.Load() // a learner refuses clients: never even a last resort
	}
}

func contains(eps []*Endpoint, ep *Endpoint) bool {
	for _, e := range eps {
		if e == ep {
			return true
		}
	}
	return false
}

// dialOne dials ep within the dial timeout, at addr when ep is a host
// name the plan gave an address of (else by its own address), and
// originates TLS when the settings say so, to ep's name; the caller's
// DialPlan counts the outcome.
func (p *Pool) dialOne(ctx context.Context, s *Settings, ep *Endpoint, addr netip.AddrPort) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	defer cancel()
	target := ep.addr
	if addr.IsValid() && !ep.ip.IsValid() {
		target = addr.String()
	}
	conn, err := p.dial(dctx, "tcp", target)
	if err == nil && s.Originate != nil {
		conn, err = originate(dctx, conn, s.Originate, ep.addr)
	}
	return conn, err
}

// originate runs a TLS client handshake on conn with conf, within ctx, and
// returns the TLS connection; on failure it closes conn.
func originate(ctx context.Context, conn net.Conn, conf *tls.Config, addr string) (net.Conn, error) {
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		conf = conf.Clone()
		conf.ServerName = host
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// localFailure reports whether a dial failed for a reason of this host, not
// of the endpoint: out of file descriptors, or a host name with no address
// to dial (DNS's trouble). Such a failure says nothing about the member, so
// it doesn't mark it down.
func localFailure(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, resolver.ErrUnresolved)
}

// markDown deactivates ep after a failed dial. Without health checks the
// retry-delay probe brings it back; with them, rise successful checks do.
func (p *Pool) markDown(ep *Endpoint, err error) {
	if c := ep.check.Load(); c != nil {
		c.endSuccessRun()
	}
	if ep.active.CompareAndSwap(true, false) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "reason": "dial failed", "error": err.Error()}).Warn("endpoint deactivated")
	}
	if p.settings.Load().HealthCheck.Type == config.CheckNone {
		p.startProbe(ep)
	}
}

// markUp re-activates ep if it was inactive. It logs at info: a member
// coming back needs no action, unlike one going away.
func (p *Pool) markUp(ep *Endpoint, reason string) {
	if ep.active.CompareAndSwap(false, true) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "reason": reason}).Info("endpoint re-activated")
		p.returned(ep)
	}
}

// startProbe runs ep's re-probe loop unless one is running: every retry
// delay, a TCP connect within the dial timeout; success re-activates it.
// The loop ends when health checks take over.
func (p *Pool) startProbe(ep *Endpoint) {
	if !ep.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer ep.probing.Store(false)
		for sleepUntil(p.ctx, time.Now().Add(p.settings.Load().RetryDelay)) && p.probe(ep) {
		}
	}()
}

// probe runs one re-probe of ep and reports whether another is needed: not
// when ep left the pool, came back or is now health-checked.
func (p *Pool) probe(ep *Endpoint) bool {
	s := p.settings.Load()
	if ep.removed.Load() || ep.active.Load() || s.HealthCheck.Type != config.CheckNone {
		return false
	}
	dctx, cancel := context.WithTimeout(p.ctx, s.DialTimeout)
	conn, err := p.dial(dctx, "tcp", ep.addr)
	cancel()
	if err == nil {
		_ = conn.Close()
		p.markUp(ep, "probe succeeded")
		return false
	}
	p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "error": err.Error()}).Debug("probe failed")
	return true
}
