package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// What a pool does with the open connections of an endpoint that an update
// removes.
const (
	RemovedKeep  = "keep"
	RemovedDrain = "drain"
	RemovedClose = "close"
)

// closeSpread is the window over which connections closed by policy are
// spread, so that their clients don't all reconnect at once.
const closeSpread = 500 * time.Millisecond

// ErrNoEndpoint is returned by Dial when no endpoint could be reached.
var ErrNoEndpoint = errors.New("no endpoint reachable")

// DialFunc dials one endpoint address.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Settings are the pool settings a reload may change. They apply to new
// connections and to later probes.
type Settings struct {
	DialTimeout time.Duration
	RetryDelay  time.Duration
	// OnEndpointRemoved is RemovedKeep, RemovedDrain or RemovedClose.
	OnEndpointRemoved string
	DrainTimeout      time.Duration
}

// Options configure a new Pool.
type Options struct {
	Settings
	// Policy picks among candidates; nil means StickyRandom.
	Policy Policy
	// Dial dials an endpoint; nil means a net.Dialer.
	Dial DialFunc
	// Log receives the pool's log lines; it should carry the listener name.
	Log logrus.FieldLogger
}

// Pool is the set of endpoints of one etcd cluster. Dial and Endpoints are
// lock-free; Update serialises with itself only.
type Pool struct {
	ctx    context.Context
	cancel context.CancelFunc
	policy Policy
	dial   DialFunc
	log    logrus.FieldLogger

	settings  atomic.Pointer[Settings]
	endpoints atomic.Pointer[[]*Endpoint]

	updateMu sync.Mutex
}

// NewPool returns a pool with no endpoints; call Update to give it some.
// Close stops its background probes.
func NewPool(opts Options) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{ctx: ctx, cancel: cancel, policy: opts.Policy, dial: opts.Dial, log: opts.Log}
	if p.policy == nil {
		p.policy = &StickyRandom{}
	}
	if p.dial == nil {
		var d net.Dialer
		p.dial = d.DialContext
	}
	if p.log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		p.log = l
	}
	p.SetSettings(opts.Settings)
	empty := []*Endpoint{}
	p.endpoints.Store(&empty)
	return p
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// SetSettings replaces the pool's settings.
func (p *Pool) SetSettings(s Settings) {
	if s.DialTimeout <= 0 {
		s.DialTimeout = 3 * time.Second
	}
	if s.RetryDelay <= 0 {
		s.RetryDelay = time.Minute
	}
	p.settings.Store(&s)
}

// Settings returns the pool's current settings.
func (p *Pool) Settings() Settings { return *p.settings.Load() }

// Endpoints returns the pool's current endpoints. The slice must not be
// modified.
func (p *Pool) Endpoints() []*Endpoint { return *p.endpoints.Load() }

// Close stops the pool's probes. Open connections are not touched.
func (p *Pool) Close() { p.cancel() }

// Update replaces the pool's endpoint set. Endpoints whose address stays keep
// their object, and so their state and counters; new ones start active;
// removed ones stop taking connections at once, and their open connections
// are kept, drained or closed as the settings say. It returns the addresses
// added and removed.
func (p *Pool) Update(eps []resolver.Endpoint) (added, removed []string) {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()

	old := p.Endpoints()
	byAddr := make(map[string]*Endpoint, len(old))
	for _, ep := range old {
		byAddr[ep.addr] = ep
	}
	next := make([]*Endpoint, 0, len(eps))
	seen := make(map[string]bool, len(eps))
	for _, re := range eps {
		if seen[re.Addr] {
			continue
		}
		seen[re.Addr] = true
		if ep, ok := byAddr[re.Addr]; ok {
			if ep.Record() != re {
				ep.record.Store(&re)
			}
			next = append(next, ep)
			continue
		}
		next = append(next, newEndpoint(re))
		added = append(added, re.Addr)
	}
	p.endpoints.Store(&next)

	s := p.Settings()
	for _, ep := range old {
		if seen[ep.addr] {
			continue
		}
		removed = append(removed, ep.addr)
		ep.removed.Store(true)
		switch s.OnEndpointRemoved {
		case RemovedClose:
			ep.closeConns(closeSpread)
		case RemovedDrain:
			time.AfterFunc(s.DrainTimeout, func() { ep.closeConns(closeSpread) })
		}
	}
	if len(old) > 0 && (len(added) > 0 || len(removed) > 0) {
		p.log.WithFields(logrus.Fields{"added": added, "removed": removed}).Info("endpoints updated")
	}
	return added, removed
}

// Dial connects to an endpoint of the pool for one new client connection.
// It picks with the policy among the active endpoints of the best SRV
// priority; when a dial fails it marks that endpoint inactive and tries the
// next, so the client never sees the failure. When no active endpoint is
// left it tries every remaining endpoint once anyway, so that a member which
// came back is used at once rather than after the retry delay.
func (p *Pool) Dial(ctx context.Context) (net.Conn, *Endpoint, error) {
	eps := p.Endpoints()
	if len(eps) == 0 {
		return nil, nil, fmt.Errorf("%w: the pool has no endpoints", ErrNoEndpoint)
	}
	s := p.settings.Load()
	var tried []*Endpoint
	var lastErr error
	for {
		ep := p.pick(eps, tried)
		if ep == nil {
			break
		}
		conn, err := p.dialOne(ctx, s, ep)
		if err == nil {
			return conn, ep, nil
		}
		lastErr = err
		tried = append(tried, ep)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
	// Nothing active answered: try the inactive ones too, once each.
	for _, ep := range eps {
		if contains(tried, ep) || ep.removed.Load() {
			continue
		}
		conn, err := p.dialOne(ctx, s, ep)
		if err == nil {
			return conn, ep, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
	return nil, nil, fmt.Errorf("%w: tried %d endpoints, last error: %w", ErrNoEndpoint, len(eps), lastErr)
}

// pick returns the policy's choice among the active, untried endpoints of
// the lowest SRV priority present, or nil when there is none.
func (p *Pool) pick(eps, tried []*Endpoint) *Endpoint {
	if allCandidates(eps, tried) {
		return p.policy.Pick(eps) // the usual case, without a copy
	}
	var buf [16]*Endpoint
	candidates := buf[:0]
	best := -1
	for _, ep := range eps {
		if !ep.active.Load() || contains(tried, ep) {
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
	return p.policy.Pick(candidates)
}

// allCandidates reports whether every endpoint of eps is a candidate: the
// pool has some, all active, none tried, all of one priority.
func allCandidates(eps, tried []*Endpoint) bool {
	if len(eps) == 0 || len(tried) > 0 {
		return false
	}
	prio := eps[0].priority()
	for _, ep := range eps {
		if !ep.active.Load() || ep.priority() != prio {
			return false
		}
	}
	return true
}

func contains(eps []*Endpoint, ep *Endpoint) bool {
	for _, e := range eps {
		if e == ep {
			return true
		}
	}
	return false
}

// dialOne dials ep within the dial timeout and updates its state.
func (p *Pool) dialOne(ctx context.Context, s *Settings, ep *Endpoint) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	conn, err := p.dial(dctx, "tcp", ep.addr)
	cancel()
	if err != nil {
		ep.dialErrors.Add(1)
		if ctx.Err() == nil {
			p.markDown(ep, err)
		}
		return nil, fmt.Errorf("endpoint %s: %w", ep.addr, err)
	}
	p.markUp(ep, "dial succeeded")
	return conn, nil
}

// markDown deactivates ep and starts its re-probe.
func (p *Pool) markDown(ep *Endpoint, err error) {
	if ep.active.CompareAndSwap(true, false) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "error": err.Error()}).Warn("endpoint deactivated")
	}
	p.startProbe(ep)
}

// markUp re-activates ep if it was inactive.
func (p *Pool) markUp(ep *Endpoint, reason string) {
	if ep.active.CompareAndSwap(false, true) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "reason": reason}).Warn("endpoint re-activated")
	}
}

// startProbe runs ep's re-probe loop unless one is running: every retry
// delay, a TCP connect within the dial timeout; success re-activates it.
func (p *Pool) startProbe(ep *Endpoint) {
	if !ep.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer ep.probing.Store(false)
		for {
			s := p.settings.Load()
			t := time.NewTimer(s.RetryDelay)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if ep.removed.Load() || ep.active.Load() {
				return
			}
			dctx, cancel := context.WithTimeout(p.ctx, s.DialTimeout)
			conn, err := p.dial(dctx, "tcp", ep.addr)
			cancel()
			if err == nil {
				_ = conn.Close()
				p.markUp(ep, "probe succeeded")
				return
			}
			p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "error": err.Error()}).Debug("probe failed")
		}
	}()
}
