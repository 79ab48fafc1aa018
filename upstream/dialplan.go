package upstream

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// DialPlan is one new connection's way through the pool's endpoints and
// their addresses: NextAddr (or, within the package, next) gives the
// endpoint and the address to try, and the caller reports how the try
// went with Failed or Connected. It holds Dial's rules, and Dial runs
// through one: pick with the policy among the endpoints up, then the
// active ones, then any, each endpoint once; a host name's cached
// addresses in order, a failed one moving to the next before the endpoint
// counts as failed; a name with no address fails as unresolved; a failed
// endpoint counts a dial error and is marked down unless the failure was
// this host's (an unresolved name is DNS's); a connection served after a
// failure counts a failover; every endpoint's try, all its addresses,
// goes to its dial histogram. A caller that connects without blocking
// (the forwarder's event loops) drives one itself. A DialPlan is used by
// one goroutine at a time.
type DialPlan struct {
	p       *Pool
	eps     []*Endpoint
	tried   []*Endpoint
	level   int
	cur     *Endpoint    // being tried
	addrs   []netip.Addr // of cur, a host name: its cached addresses
	ai      int          // the index in addrs being tried
	start   time.Time    // of cur's try
	lastErr error
}

// errNotIP fails the try of a host-name endpoint, in a plan driven through
// NextAddr, of a pool without Lookup: a local failure, as an unresolved
// name.
var errNotIP = fmt.Errorf("%w: the pool has no lookup to connect it by address", resolver.ErrUnresolved)

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

// NextAddr returns the endpoint and the IP address and port to connect
// to now, for a caller that connects by itself, or false when every
// level is exhausted; Err then says why. A host-name endpoint of a pool
// without Lookup has no address: it fails as unresolved, without being
// marked down, and the next is tried.
func (d *DialPlan) NextAddr() (*Endpoint, netip.AddrPort, bool) {
	for {
		ep, addr, ok := d.next()
		if !ok || addr.IsValid() {
			return ep, addr, ok
		}
		d.Failed(fmt.Errorf("%w: %s", errNotIP, ep.addr))
	}
}

// next returns the endpoint and the address to try now, or false when
// every level is exhausted. The address is the endpoint's own when it is
// an IP address, one of its cached addresses in turn when it is a host
// name, and the zero value when the pool has no Lookup: the name is then
// dialled by name, through the pool's dial function. A name with no
// address fails, and the next endpoint comes.
func (d *DialPlan) next() (*Endpoint, netip.AddrPort, bool) {
	for d.cur == nil {
		ep, ok := d.pickNext()
		if !ok {
			return nil, netip.AddrPort{}, false
		}
		if err := d.resolve(ep); err != nil {
			d.Failed(err)
		}
	}
	return d.cur, d.addr(), true
}

// pickNext starts the try of the next endpoint, counted as a dial in
// progress (least-connections sees it) until it fails or connects.
func (d *DialPlan) pickNext() (*Endpoint, bool) {
	for ; d.level <= levelAny; d.level++ {
		if ep := d.p.pick(d.eps, d.tried, d.level); ep != nil {
			d.cur, d.start = ep, time.Now()
			ep.dialing.Add(1)
			return ep, true
		}
	}
	return nil, false
}

// resolve takes the cached addresses of ep, when it is a host name and
// the pool has a Lookup.
func (d *DialPlan) resolve(ep *Endpoint) error {
	if ep.ip.IsValid() || d.p.lookup == nil {
		return nil
	}
	addrs, err := d.p.lookup(ep.name)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("%w: %s", resolver.ErrUnresolved, ep.name)
	}
	d.addrs = addrs
	return err
}

// addr is the address of the current try, the zero value for a name
// dialled by name.
func (d *DialPlan) addr() netip.AddrPort {
	switch {
	case d.cur.ip.IsValid():
		return d.cur.ip
	case len(d.addrs) == 0:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(d.addrs[d.ai], d.cur.port)
}

// Failed reports that the try of the address NextAddr gave failed with
// err.
func (d *DialPlan) Failed(err error) { d.failed(err, false) }

// failed is Failed; canceled says the caller gave up (its context ended),
// which says nothing about the endpoint either. A host name with an
// address left moves on to it, unless the failure was this host's.
func (d *DialPlan) failed(err error, canceled bool) {
	if !canceled && d.ai+1 < len(d.addrs) && !localFailure(err) {
		d.ai++
		return
	}
	if d.ai > 0 {
		err = fmt.Errorf("%s: %d addresses failed, the last %s: %w", d.cur.name, d.ai+1, d.addrs[d.ai], err)
	}
	ep := d.end()
	ep.dialErrors.Add(1)
	if !canceled && !localFailure(err) {
		d.p.markDown(ep, err)
	}
	d.tried = append(d.tried, ep)
	d.lastErr = fmt.Errorf("endpoint %s: %w", ep.addr, err)
}

// Connected reports that the try of the address NextAddr gave succeeded.
func (d *DialPlan) Connected() {
	ep := d.end()
	d.p.markUp(ep, "dial succeeded")
	d.p.countFailover(d.lastErr)
}

// end ends the current try: no longer in progress, its duration observed.
func (d *DialPlan) end() *Endpoint {
	ep := d.cur
	d.cur, d.addrs, d.ai = nil, nil, 0
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
// DialPlan's NextAddr, without the pool's dial function: the pool
// originates no TLS, and it has a Lookup or no host-name endpoint. A pool
// with no endpoint yet (waiting for DNS, say) is, too: its plan fails at
// once.
func (p *Pool) Nonblocking() bool {
	if p.settings.Load().Originate != nil {
		return false
	}
	if p.lookup != nil {
		return true
	}
	for _, ep := range p.Endpoints() {
		if !ep.ip.IsValid() {
			return false
		}
	}
	return true
}
