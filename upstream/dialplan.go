package upstream

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// DialPlan is one new connection's way through the pool's endpoints: Next
// gives the endpoint to try, and the caller reports how the try went with
// Failed or Connected. It holds Dial's rules, and Dial runs through one:
// pick with the policy among the endpoints up, then the active ones, then
// any, each endpoint once; a failed dial counts a dial error and marks the
// endpoint down unless the failure was this host's; a connection served
// after a failure counts a failover; every try's duration goes to the
// endpoint's dial histogram. A caller that connects without blocking (the
// forwarder's event loops) drives one itself, with the addresses NextAddr
// gives. A DialPlan is used by one goroutine at a time.
type DialPlan struct {
	p       *Pool
	eps     []*Endpoint
	tried   []*Endpoint
	level   int
	cur     *Endpoint // being tried
	start   time.Time // of cur's try
	lastErr error
}

// errNotIP fails the try of an endpoint whose address is a host name in
// a plan driven through NextAddr: a local failure, as an unresolved name.
var errNotIP = errors.New("not an IP address; dial it through the pool")

// Plan starts the way of one new connection through the pool's current
// endpoints; it fails with ErrNoEndpoint when the pool has none.
func (p *Pool) Plan() (DialPlan, error) {
	eps := p.Endpoints()
	if len(eps) == 0 {
		if why := p.waiting.Load(); why != nil {
			return DialPlan{}, fmt.Errorf("%w: the pool has no endpoints yet: %s", ErrNoEndpoint, *why)
		}
		return DialPlan{}, fmt.Errorf("%w: the pool has no endpoints", ErrNoEndpoint)
	}
	return DialPlan{p: p, eps: eps}, nil
}

// Next returns the endpoint to try now, or false when every level is
// exhausted; Err then says why. The try is counted as a dial in progress
// (least-connections sees it) until Failed or Connected.
func (d *DialPlan) Next() (*Endpoint, bool) {
	for ; d.level <= levelAny; d.level++ {
		if ep := d.p.pick(d.eps, d.tried, d.level); ep != nil {
			d.cur, d.start = ep, time.Now()
			ep.dialing.Add(1)
			return ep, true
		}
	}
	return nil, false
}

// NextAddr is Next for a caller that connects by itself: the endpoint and
// the IP address and port to connect to. An endpoint whose address is a
// host name has none (see Nonblocking): it fails as unresolved, without
// being marked down, and the next is tried.
func (d *DialPlan) NextAddr() (*Endpoint, netip.AddrPort, bool) {
	for {
		ep, ok := d.Next()
		if !ok || ep.ip.IsValid() {
			return ep, ep.ipOrZero(), ok
		}
		d.Failed(fmt.Errorf("%w: %s", errNotIP, ep.addr))
	}
}

// Failed reports that the try of the endpoint Next gave failed with err.
func (d *DialPlan) Failed(err error) { d.failed(err, false) }

// failed is Failed; canceled says the caller gave up (its context ended),
// which says nothing about the endpoint either.
func (d *DialPlan) failed(err error, canceled bool) {
	ep := d.end()
	ep.dialErrors.Add(1)
	if !canceled && !localFailure(err) {
		d.p.markDown(ep, err)
	}
	d.tried = append(d.tried, ep)
	d.lastErr = fmt.Errorf("endpoint %s: %w", ep.addr, err)
}

// Connected reports that the try of the endpoint Next gave succeeded.
func (d *DialPlan) Connected() {
	ep := d.end()
	d.p.markUp(ep, "dial succeeded")
	d.p.countFailover(d.lastErr)
}

// end ends the current try: no longer in progress, its duration observed.
func (d *DialPlan) end() *Endpoint {
	ep := d.cur
	d.cur = nil
	ep.dialing.Add(-1)
	ep.timings.observeDial(d.start)
	return ep
}

// Err is why the plan found no endpoint that answered.
func (d *DialPlan) Err() error {
	return fmt.Errorf("%w: tried %d endpoints, last error: %w", ErrNoEndpoint, len(d.tried), d.lastErr)
}

// Timeout is the dial timeout of one try.
func (d *DialPlan) Timeout() time.Duration { return d.p.settings.Load().DialTimeout }

// Nonblocking reports whether a new connection may be dialled through a
// DialPlan's NextAddr, without the pool's dial function: the pool has
// endpoints, every one's address is an IP address, and it originates no
// TLS.
func (p *Pool) Nonblocking() bool {
	eps := p.Endpoints()
	if len(eps) == 0 || p.settings.Load().Originate != nil {
		return false
	}
	for _, ep := range eps {
		if !ep.ip.IsValid() {
			return false
		}
	}
	return true
}
