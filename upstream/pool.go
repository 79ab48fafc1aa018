package upstream

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// Pool is the set of endpoints of one etcd cluster: the configured
// endpoints (the seed) and, with member sync, the members the cluster
// reports besides them. Dial and Endpoints are lock-free; Update,
// SetSettings and member sync serialise with each other only.
type Pool struct {
	ctx    context.Context
	cancel context.CancelFunc
	dial   DialFunc
	lookup LookupFunc // nil: host names are dialled by name
	log    logrus.FieldLogger

	checkers    *Checkers
	members     *memberSync
	fixedPolicy bool // Options.Policy was set
	policy      atomic.Pointer[policySlot]
	settings    atomic.Pointer[Settings]
	endpoints   atomic.Pointer[[]*Endpoint]
	failovers   atomic.Uint64
	// waiting says why the pool has no endpoints yet, for Dial's error.
	waiting atomic.Pointer[string]
	// alarms are the cluster-wide alarms its members report (alarm.go).
	alarms alarmBook

	updateMu sync.Mutex
	// configured and discovered are the two sources of the endpoint set,
	// which is their union. Guarded by updateMu.
	configured, discovered []resolver.Endpoint
	// removed are the endpoints removed from the set, by address, kept
	// while connections to them may be open: an address that comes back
	// revives its object, so that its open connections and counters stay
	// with it. Guarded by updateMu.
	removed map[string]*Endpoint
	// closed is set by Close: no checker is taken after it. Guarded by
	// updateMu.
	closed bool
	// stopMover stops the rounds of moves (mover.go); nil when none run.
	// Guarded by updateMu.
	stopMover context.CancelFunc

	// rebalanceDue says that a member returned or joined since the pool
	// was last even; stickyMoving that sticky-random's clients follow its
	// new pick (rebalance.go).
	rebalanceDue, stickyMoving atomic.Bool
	moveMu                     sync.Mutex
	// arrivals are the endpoints that returned or joined and that
	// sticky-random has not yet tossed its coin for. Guarded by moveMu.
	arrivals []*Endpoint
	// fill is sticky-random's look for a vacant member after a toss.
	// Guarded by moveMu.
	fill fillState
}

// policySlot holds the pool's policy and the name it was made from.
type policySlot struct {
	name config.Policy
	Policy
}

// NewPool returns a pool with no endpoints; call Update to give it some.
// Close stops its background work.
func NewPool(opts Options) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{ctx: ctx, cancel: cancel, dial: opts.Dial, lookup: opts.Lookup, log: opts.Log, removed: map[string]*Endpoint{}}
	if opts.Policy != nil {
		p.fixedPolicy = true
		p.policy.Store(&policySlot{Policy: opts.Policy})
	}
	if p.dial == nil {
		var d net.Dialer
		p.dial = d.DialContext
	}
	if p.log == nil {
		p.log = discardLog()
	}
	p.checkers = opts.Checkers
	if p.checkers == nil {
		p.checkers = NewCheckers(p.dial, p.log)
	}
	p.members = newMemberSync(p, p.dial, p.log)
	empty := []*Endpoint{}
	p.endpoints.Store(&empty)
	p.SetSettings(opts.Settings)
	return p
}

// discardLog returns a logger that drops everything.
func discardLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

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
	p.syncChecksLocked()
	p.switchMoverLocked(s.Rebalance || s.MaxConnectionAge > 0)
	if p.members.switchTo(p.ctx, s.MemberSync > 0) && len(p.discovered) > 0 {
		p.discovered = nil // member sync off: what it added goes
		p.publishLocked("member-sync off")
	}
}

// Settings returns the pool's current settings, defaults applied.
func (p *Pool) Settings() Settings { return *p.settings.Load() }

// Endpoints returns the pool's current endpoints. The slice must not be
// modified.
func (p *Pool) Endpoints() []*Endpoint { return *p.endpoints.Load() }

// PoolStats is a snapshot of a pool's counters, for the status and the
// metrics.
type PoolStats struct {
	// Failovers is the number of connections that were served by an
	// endpoint after a dial to another endpoint failed for them.
	Failovers uint64
	// SyncRounds is the number of member sync rounds that succeeded.
	SyncRounds uint64
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() PoolStats {
	return PoolStats{Failovers: p.failovers.Load(), SyncRounds: p.members.rounds.Load()}
}

// Close stops the pool's probes and member sync, and lets go of its
// health checkers, which stop when no other pool uses them. Open
// connections are not touched.
func (p *Pool) Close() {
	p.cancel()
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	p.closed = true
	for _, ep := range p.Endpoints() {
		p.releaseChecksLocked(ep)
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

// UpdateFrom replaces the pool's configured endpoint set, the seed, with
// what caused it named in the log: "config" for an edit of the file, "dns"
// for a DNS answer. Endpoints whose address stays keep their object, and
// so their state and counters; new ones start up and get health checks;
// removed ones stop taking connections at once, and their open
// connections are kept, drained or closed as the settings say. Members
// found by member sync stay. It returns the addresses added to and removed
// from the pool.
func (p *Pool) UpdateFrom(source string, eps []resolver.Endpoint) (added, removed []string) {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	p.configured = eps
	added, removed = p.publishLocked(source)
	if len(added) > 0 || len(removed) > 0 {
		p.members.kick()
	}
	return added, removed
}

// publishLocked makes the endpoint set the union of the configured and
// discovered endpoints, configured first; source names what changed for
// the log. The caller holds updateMu.
func (p *Pool) publishLocked(source string) (added, removed []string) {
	old := p.Endpoints()
	p.pruneRemovedLocked()
	next, added := p.nextLocked(old)
	p.endpoints.Store(&next)
	seen := make(map[string]bool, len(next))
	for _, ep := range next {
		seen[ep.addr] = true
	}
	for _, ep := range old {
		if !seen[ep.addr] {
			removed = append(removed, ep.addr)
			p.removeLocked(ep)
		}
	}
	p.syncChecksLocked()
	p.noteJoinsLocked(old, next)
	if (len(old) > 0 || source != "config") && (len(added) > 0 || len(removed) > 0) {
		p.log.WithFields(logrus.Fields{"added": added, "removed": removed, "source": source}).Info("endpoints updated")
	}
	return added, removed
}

// noteJoinsLocked notes as arrivals the endpoints of next that old lacks,
// unless old was empty (a pool's first set: nothing to rebalance from).
// The caller holds updateMu.
func (p *Pool) noteJoinsLocked(old, next []*Endpoint) {
	if len(old) == 0 {
		return
	}
	for _, ep := range next {
		if !slices.Contains(old, ep) {
			p.noteArrival(ep)
		}
	}
}

// nextLocked returns the endpoint set to publish after old, the union of
// the configured and discovered endpoints: the objects of old for the
// addresses that stay, with their records updated, and the addresses
// added. The caller holds updateMu.
func (p *Pool) nextLocked(old []*Endpoint) (next []*Endpoint, added []string) {
	byAddr := make(map[string]*Endpoint, len(old))
	for _, ep := range old {
		byAddr[ep.addr] = ep
	}
	next = make([]*Endpoint, 0, len(p.configured)+len(p.discovered))
	seen := make(map[string]bool, len(p.configured)+len(p.discovered))
	for _, re := range slices.Concat(p.configured, p.discovered) {
		if seen[re.Addr] {
			continue
		}
		seen[re.Addr] = true
		ep, ok := byAddr[re.Addr]
		switch {
		case !ok:
			ep = p.addLocked(re, len(old) > 0)
			added = append(added, re.Addr)
		case ep.Record() != re:
			ep.record.Store(&re)
		}
		next = append(next, ep)
	}
	return next, added
}

// addLocked returns the endpoint for an address that joins the set: the
// removed object of that address, revived, when there is one, else a new
// one. One that joins a running pool awaits its first check (see
// readiness.awaiting), marked before it is published so that no pick sees
// it up in between. The caller holds updateMu.
func (p *Pool) addLocked(re resolver.Endpoint, running bool) *Endpoint {
	ep, ok := p.removed[re.Addr]
	if ok {
		delete(p.removed, re.Addr)
		ep.revive(re)
	} else {
		ep = newEndpoint(re)
	}
	ep.awaiting.Store(running && p.checksTellReadinessLocked())
	return ep
}

// checksTellReadinessLocked reports whether the pool's checks will say
// whether a member is a learner: the etcd check does, tcp and none don't
// (member sync's member list may, later). The caller holds updateMu.
func (p *Pool) checksTellReadinessLocked() bool {
	return !p.closed && p.settings.Load().HealthCheck.Type == config.CheckEtcd
}

// removeLocked takes ep out of service: no new connections, no health
// checks; its open connections are kept, drained or closed as the
// settings say, and it is kept in removed while they may be open. The
// caller holds updateMu.
func (p *Pool) removeLocked(ep *Endpoint) {
	gen := ep.removals.Add(1)
	ep.removed.Store(true)
	ep.drained.Store(false) // the drained mark lasts until the address goes
	p.stopChecksLocked(ep)
	p.removed[ep.addr] = ep
	s := p.Settings()
	switch s.OnEndpointRemoved {
	case config.RemovedClose:
		ep.closeConns(closeSpread)
	case config.RemovedDrain:
		time.AfterFunc(s.DrainTimeout, func() {
			if ep.removals.Load() == gen && ep.removed.Load() { // not revived since
				ep.closeConns(closeSpread)
			}
		})
	}
}

// pruneRemovedLocked forgets the removed endpoints without a connection,
// open or being dialled. One removed by the last update is kept until the
// next, however, so that a connection dialled just before its removal and
// not yet tracked is not missed. The caller holds updateMu.
func (p *Pool) pruneRemovedLocked() {
	for addr, ep := range p.removed {
		if ep.load() == 0 {
			delete(p.removed, addr)
		}
	}
}

// configuredLocked returns the set of configured addresses. The caller
// holds updateMu.
func (p *Pool) configuredLocked() map[string]bool {
	configured := make(map[string]bool, len(p.configured))
	for _, re := range p.configured {
		configured[re.Addr] = true
	}
	return configured
}

// candidates implements memberPool: the endpoints, the configured ones
// that are up first, then the discovered ones that are up, then the rest.
func (p *Pool) candidates() []*Endpoint {
	p.updateMu.Lock()
	configured := p.configuredLocked()
	p.updateMu.Unlock()
	eps := slices.Clone(p.Endpoints())
	rank := func(ep *Endpoint) int {
		r := 0
		if !configured[ep.addr] {
			r++
		}
		if !ep.Up() {
			r += 2
		}
		return r
	}
	slices.SortStableFunc(eps, func(a, b *Endpoint) int { return rank(a) - rank(b) })
	return eps
}

// discover implements memberPool: the voting members that are not
// configured become the discovered set, unless ctx is done.
func (p *Pool) discover(ctx context.Context, members []member) (int, bool) {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	if ctx.Err() != nil {
		return 0, false
	}
	p.discovered = membersToEndpoints(members, p.configuredLocked())
	p.publishLocked("member-sync")
	p.learnersFromMembers(members)
	return len(p.discovered), true
}
