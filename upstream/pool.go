package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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
// connections and to later probes and checks.
type Settings struct {
	DialTimeout time.Duration
	RetryDelay  time.Duration
	// OnEndpointRemoved is RemovedKeep, RemovedDrain or RemovedClose.
	OnEndpointRemoved string
	DrainTimeout      time.Duration
	// Policy names the pick policy (PolicyStickyRandom when empty). It is
	// ignored when Options.Policy is set.
	Policy string
	// HealthCheck configures active health checks; the zero value runs
	// none.
	HealthCheck HealthCheck
	// OnUnhealthy is UnhealthyClose (when empty) or UnhealthyKeep. Close is
	// the default because a client left on a frozen member hangs and loses
	// its leases, where a closed one reconnects to a healthy member.
	OnUnhealthy string
	// MemberSync is how often the cluster is asked for its members; 0
	// turns member sync off.
	MemberSync time.Duration
	// TLS, when set, is used to talk to every endpoint (etcd check and
	// member sync): the listener's upstream-tls block.
	TLS *tls.Config
	// DiscoveredTLS is used for the TLS members (discovered through
	// _etcd-client-ssl, or in TLSEndpoints) when TLS is nil; nil means the
	// system roots.
	DiscoveredTLS *tls.Config
	// TLSEndpoints are the static endpoints given as https://: their
	// health checks and member sync speak TLS, as for discovered TLS
	// members.
	TLSEndpoints []string
	// Originate, when set, makes Dial speak TLS to the endpoint for the
	// client: the handshake is part of the dial, within DialTimeout, and
	// a handshake that fails is a failed dial. An empty ServerName is
	// the endpoint's host.
	Originate *tls.Config
}

func (s Settings) withDefaults() Settings {
	if s.DialTimeout <= 0 {
		s.DialTimeout = 3 * time.Second
	}
	if s.RetryDelay <= 0 {
		s.RetryDelay = time.Minute
	}
	if s.Policy == "" {
		s.Policy = PolicyStickyRandom
	}
	if s.OnUnhealthy == "" {
		s.OnUnhealthy = UnhealthyClose
	}
	if s.MemberSync < 0 {
		s.MemberSync = 0
	}
	s.HealthCheck = s.HealthCheck.withDefaults()
	return s
}

// Options configure a new Pool.
type Options struct {
	Settings
	// Policy, when set, picks among candidates for the pool's whole life,
	// whatever Settings.Policy says.
	Policy Policy
	// Dial dials an endpoint; nil means a net.Dialer.
	Dial DialFunc
	// Log receives the pool's log lines; it should carry the listener name.
	Log logrus.FieldLogger
}

// Pool is the set of endpoints of one etcd cluster: the configured
// endpoints (the seed) and, with member sync, the members the cluster
// reports besides them. Dial and Endpoints are lock-free; Update,
// SetSettings and member sync serialise with each other only.
type Pool struct {
	ctx    context.Context
	cancel context.CancelFunc
	dial   DialFunc
	log    logrus.FieldLogger

	fixedPolicy bool // Options.Policy was set
	policy      atomic.Pointer[policySlot]
	settings    atomic.Pointer[Settings]
	endpoints   atomic.Pointer[[]*Endpoint]
	clients     atomic.Pointer[checkClients]
	failovers   atomic.Uint64
	// waiting says why the pool has no endpoints yet, for Dial's error.
	waiting atomic.Pointer[string]

	updateMu sync.Mutex
	// configured and discovered are the two sources of the endpoint set,
	// which is their union. Guarded by updateMu.
	configured, discovered []resolver.Endpoint
	// retired are the endpoints removed from the set, by address, kept
	// while connections to them may be open: an address that comes back
	// revives its object, so that its open connections and counters stay
	// with it. Guarded by updateMu.
	retired map[string]*Endpoint
	// syncStop stops member sync; nil when it is off. Guarded by updateMu.
	syncStop context.CancelFunc
	// syncNow asks member sync for a round now.
	syncNow chan struct{}
	// syncRounds counts the member sync rounds that succeeded.
	syncRounds atomic.Uint64
}

// policySlot holds the pool's policy and the name it was made from.
type policySlot struct {
	name string
	Policy
}

// NewPool returns a pool with no endpoints; call Update to give it some.
// Close stops its background work.
func NewPool(opts Options) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{ctx: ctx, cancel: cancel, dial: opts.Dial, log: opts.Log, syncNow: make(chan struct{}, 1), retired: map[string]*Endpoint{}}
	if opts.Policy != nil {
		p.fixedPolicy = true
		p.policy.Store(&policySlot{Policy: opts.Policy})
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
	empty := []*Endpoint{}
	p.endpoints.Store(&empty)
	p.SetSettings(opts.Settings)
	return p
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// SetSettings replaces the pool's settings: a changed policy starts afresh,
// health checks and member sync start, stop or change from their next
// round.
func (p *Pool) SetSettings(s Settings) {
	s = s.withDefaults()
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	p.settings.Store(&s)
	if cur := p.policy.Load(); !p.fixedPolicy && (cur == nil || cur.name != s.Policy) {
		pol, err := NewPolicy(s.Policy)
		if err != nil {
			p.log.WithError(err).Error("keeping sticky-random")
			pol = &StickyRandom{}
		}
		p.policy.Store(&policySlot{name: s.Policy, Policy: pol})
	}
	if c := p.clients.Load(); c == nil || !c.builtFrom(s) {
		p.clients.Store(newCheckClients(p.dial, s))
		if c != nil {
			c.closeIdle()
		}
	}
	p.syncChecksLocked()
	p.syncMemberSyncLocked()
}

// Settings returns the pool's current settings, defaults applied.
func (p *Pool) Settings() Settings { return *p.settings.Load() }

// Endpoints returns the pool's current endpoints. The slice must not be
// modified.
func (p *Pool) Endpoints() []*Endpoint { return *p.endpoints.Load() }

// Failovers is the number of connections that were served by an endpoint
// after a dial to another endpoint failed for them.
func (p *Pool) Failovers() uint64 { return p.failovers.Load() }

// Close stops the pool's probes, health checks and member sync. Open
// connections are not touched.
func (p *Pool) Close() {
	p.cancel()
	if c := p.clients.Load(); c != nil {
		c.closeIdle()
	}
}

// SetWaiting records why the pool has no endpoints yet (its source can't
// reach DNS, say), so that a client refused meanwhile is logged with the
// reason; "" clears it.
func (p *Pool) SetWaiting(why string) {
	if why == "" {
		p.waiting.Store(nil)
		return
	}
	p.waiting.Store(&why)
}

// Update replaces the pool's configured endpoint set, the seed. Endpoints
// whose address stays keep their object, and so their state and counters;
// new ones start up and get health checks; removed ones stop taking
// connections at once, and their open connections are kept, drained or
// closed as the settings say. Members found by member sync stay. It
// returns the addresses added to and removed from the pool.
func (p *Pool) Update(eps []resolver.Endpoint) (added, removed []string) {
	return p.UpdateFrom("config", eps)
}

// UpdateFrom is Update with what caused it named in the log: "config" for
// an edit of the file, "dns" for a DNS answer.
func (p *Pool) UpdateFrom(source string, eps []resolver.Endpoint) (added, removed []string) {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	p.configured = eps
	added, removed = p.publishLocked(source)
	if p.syncStop != nil && (len(added) > 0 || len(removed) > 0) {
		select { // a new seed may be another cluster: ask it now
		case p.syncNow <- struct{}{}:
		default:
		}
	}
	return added, removed
}

// publishLocked makes the endpoint set the union of the configured and
// discovered endpoints, configured first; source names what changed for
// the log. The caller holds updateMu.
func (p *Pool) publishLocked(source string) (added, removed []string) {
	old := p.Endpoints()
	byAddr := make(map[string]*Endpoint, len(old))
	for _, ep := range old {
		byAddr[ep.addr] = ep
	}
	p.pruneRetiredLocked()
	next := make([]*Endpoint, 0, len(p.configured)+len(p.discovered))
	seen := make(map[string]bool, len(p.configured)+len(p.discovered))
	for _, re := range append(append([]resolver.Endpoint(nil), p.configured...), p.discovered...) {
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
		next = append(next, p.addLocked(re))
		added = append(added, re.Addr)
	}
	p.endpoints.Store(&next)

	for _, ep := range old {
		if !seen[ep.addr] {
			removed = append(removed, ep.addr)
			p.removeLocked(ep)
		}
	}
	if len(removed) > 0 {
		p.clients.Load().closeIdle()
	}
	p.syncChecksLocked()
	if (len(old) > 0 || source != "config") && (len(added) > 0 || len(removed) > 0) {
		p.log.WithFields(logrus.Fields{"added": added, "removed": removed, "source": source}).Info("endpoints updated")
	}
	return added, removed
}

// addLocked returns the endpoint for an address that joins the set: the
// retired object of that address, revived, when there is one, else a new
// one. The caller holds updateMu.
func (p *Pool) addLocked(re resolver.Endpoint) *Endpoint {
	ep, ok := p.retired[re.Addr]
	if !ok {
		return newEndpoint(re)
	}
	delete(p.retired, re.Addr)
	ep.revive(re)
	return ep
}

// removeLocked takes ep out of service: no new connections, no health
// checks; its open connections are kept, drained or closed as the
// settings say, and it is kept in retired while they may be open. The
// caller holds updateMu.
func (p *Pool) removeLocked(ep *Endpoint) {
	gen := ep.removals.Add(1)
	ep.removed.Store(true)
	p.stopChecksLocked(ep)
	p.retired[ep.addr] = ep
	s := p.Settings()
	switch s.OnEndpointRemoved {
	case RemovedClose:
		ep.closeConns(closeSpread)
	case RemovedDrain:
		time.AfterFunc(s.DrainTimeout, func() {
			if ep.removals.Load() == gen && ep.removed.Load() { // not revived since
				ep.closeConns(closeSpread)
			}
		})
	}
}

// pruneRetiredLocked forgets the retired endpoints without a connection,
// open or being dialled. One removed by the last update is kept until the
// next, however, so that a connection dialled just before its removal and
// not yet tracked is not missed. The caller holds updateMu.
func (p *Pool) pruneRetiredLocked() {
	for addr, ep := range p.retired {
		if ep.load() == 0 {
			delete(p.retired, addr)
		}
	}
}

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
	eps := p.Endpoints()
	if len(eps) == 0 {
		if why := p.waiting.Load(); why != nil {
			return nil, nil, fmt.Errorf("%w: the pool has no endpoints yet: %s", ErrNoEndpoint, *why)
		}
		return nil, nil, fmt.Errorf("%w: the pool has no endpoints", ErrNoEndpoint)
	}
	s := p.settings.Load()
	var tried []*Endpoint
	var lastErr error
	for level := levelUp; level <= levelAny; level++ {
		for {
			ep := p.pick(eps, tried, level)
			if ep == nil {
				break
			}
			conn, err := p.dialOne(ctx, s, ep)
			if err == nil {
				p.countFailover(lastErr)
				return conn, ep, nil
			}
			lastErr = err
			tried = append(tried, ep)
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
		}
	}
	return nil, nil, fmt.Errorf("%w: tried %d endpoints, last error: %w", ErrNoEndpoint, len(tried), lastErr)
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
	if allCandidates(eps, tried, level) {
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
	if ep.removed.Load() {
		return false
	}
	switch level {
	case levelUp:
		return ep.active.Load() && ep.healthy.Load()
	case levelActive:
		return ep.active.Load()
	default:
		return true
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

// dialOne dials ep within the dial timeout and updates its state.
func (p *Pool) dialOne(ctx context.Context, s *Settings, ep *Endpoint) (net.Conn, error) {
	defer ep.timings.observeDial(time.Now())
	ep.dialing.Add(1)
	defer ep.dialing.Add(-1)
	dctx, cancel := context.WithTimeout(ctx, s.DialTimeout)
	conn, err := p.dial(dctx, "tcp", ep.addr)
	if err == nil && s.Originate != nil {
		conn, err = originate(dctx, conn, s.Originate, ep.addr)
	}
	cancel()
	if err != nil {
		ep.dialErrors.Add(1)
		if ctx.Err() == nil && !localFailure(err) {
			p.markDown(ep, err)
		}
		return nil, fmt.Errorf("endpoint %s: %w", ep.addr, err)
	}
	p.markUp(ep, "dial succeeded")
	return conn, nil
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
	ep.endSuccessRun()
	if ep.active.CompareAndSwap(true, false) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "reason": "dial failed", "error": err.Error()}).Warn("endpoint deactivated")
	}
	if p.settings.Load().HealthCheck.Type == CheckNone {
		p.startProbe(ep)
	}
}

// markUp re-activates ep if it was inactive. It logs at info: a member
// coming back needs no action, unlike one going away.
func (p *Pool) markUp(ep *Endpoint, reason string) {
	if ep.active.CompareAndSwap(false, true) {
		p.log.WithFields(logrus.Fields{"endpoint": ep.addr, "reason": reason}).Info("endpoint re-activated")
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
		for {
			s := p.settings.Load()
			t := time.NewTimer(s.RetryDelay)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			s = p.settings.Load()
			if ep.removed.Load() || ep.active.Load() || s.HealthCheck.Type != CheckNone {
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
