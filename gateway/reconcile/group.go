// Package reconcile runs the listeners of a configuration and applies each
// new snapshot to them as a diff: what can fail (DNS, TLS files, binds) is
// prepared first without touching anything, then committed under a short
// lock. It is the control plane's part of the gateway; the listener
// package only accepts, tracks and drains.
package reconcile

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/handover"
	"github.com/etcd-gateway/etcd-gateway/listener"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// Group runs the listeners of a configuration and applies each new
// snapshot to them as a diff: listeners are started, stopped, re-bound, and
// their pools updated in place, without closing open connections.
//
// Two locks: applyMu makes Apply and Shutdown one at a time, and is held
// through the slow work of an Apply (DNS lookups, TLS files, binds); mu
// guards the running listeners and is held only to change or read them, so
// that /healthz, /status and /metrics never wait for DNS.
type Group struct {
	log logrus.FieldLogger
	// minRefresh is the shortest time between two lookups of a DNS name;
	// zero means resolver.MinRefresh. Tests shorten it.
	minRefresh time.Duration

	applyMu sync.Mutex
	// hosts resolves the host names of every pool; replaced when
	// dns-server changes.
	hosts atomic.Pointer[resolver.Hosts]

	mu        sync.Mutex
	listeners map[string]*running
	draining  []*listener.Listener // closed listeners whose connections may still be open
	fds       *listener.FDBudget   // shared by the listeners: see fds.go
	// fwd carries every listener's connections: the process's, whose
	// owner closes it after Shutdown.
	fwd *forward.Forwarder
	// checkers runs the pools' health checks, one per member and check
	// settings however many listeners point at the member.
	checkers *upstream.Checkers
	// systemd is what systemd passed, whose socket units' sockets serve
	// systemd: listen addresses; nil when it passed nothing.
	systemd *handover.Systemd
	// received holds the sockets received in the handover this process
	// starts with, for bind; guarded by applyMu. See handover.go.
	received *handover.Received
}

// running is one configured listener and its live objects.
type running struct {
	cfg  config.Listener
	pool *upstream.Pool
	ln   *listener.Listener
	src  *source
	// prev are the listeners closed by re-binds that still have open
	// connections; base holds the counts of those that had none left.
	// With them the listener's counters go on across re-binds.
	prev []*listener.Listener
	base listener.Counters
	// dns counts the lookups of the listener's SRV source.
	dns *resolver.LookupCounters
	// peers is the listener's allow-list, names looked up; nil lets anyone
	// in.
	peers *listener.Peers
}

// Diff says what an Apply changed.
type Diff struct {
	Added, Removed, Changed []string
	// Endpoints lists, per listener, the endpoint addresses added and
	// removed.
	Endpoints map[string]EndpointDiff
}

// EndpointDiff is the change to one listener's endpoint set.
type EndpointDiff struct {
	Added, Removed []string
}

// Empty reports whether the diff changed nothing.
func (d Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// NewGroup returns a group with no listeners, whose listeners' connections
// fwd carries; the caller closes fwd after Shutdown. sd is what systemd
// passed the process (nil: nothing).
func NewGroup(log logrus.FieldLogger, fwd *forward.Forwarder, sd *handover.Systemd) *Group {
	g := &Group{log: log, listeners: map[string]*running{}, fds: listener.NewFDBudget(), fwd: fwd, systemd: sd}
	g.checkers = upstream.NewCheckers(g.dial, log)
	return g
}

// Apply makes the running listeners match s. Everything that can fail is
// done first, without changing anything: SRV discovery of new and changed
// listeners, the lookup of new host names, the TLS files of new and
// changed listeners, the binding of new addresses. A name DNS says does not
// exist, a file that can't be loaded, an address that can't be bound: nothing
// changes, and the error names the listener and the key. DNS that can't be
// reached is no error: the listener starts and serves once DNS answers.
// Settings apply to new connections; open connections are never closed by
// Apply itself (a removed endpoint's connections follow its listener's
// on-endpoint-removed policy, a removed listener's are drained as at
// shutdown).
func (g *Group) Apply(ctx context.Context, s *config.Snapshot) (Diff, error) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	p, err := g.prepare(ctx, s)
	if err != nil {
		p.abort()
		return Diff{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.commit(s, p), nil
}

// limitsOf returns the limits of lc, whose allow-list is peers.
func limitsOf(lc config.Listener, peers *listener.Peers) listener.Limits {
	return listener.Limits{MaxConns: int64(lc.MaxConnections), IdleTimeout: lc.IdleTimeout, KeepAlive: lc.KeepAlive, Peers: peers}
}

// loaded is what Apply read from a listener's files before changing
// anything: its pool settings and the TLS it serves (nil for plain TCP).
type loaded struct {
	pool  upstream.Settings
	serve *tls.Config
	// peers is the allow-list, names looked up; nil lets anyone in.
	peers *listener.Peers
}

// start builds the pool and listener of a new running listener and starts serving.
func (g *Group) start(lc config.Listener, ln net.Listener, p *prepared, ld loaded) *running {
	log := g.log.WithField("listener", lc.Name)
	m := &running{cfg: lc, dns: &resolver.LookupCounters{}, peers: ld.peers}
	m.pool = upstream.NewPool(upstream.Options{Settings: ld.pool, Log: log, Dial: g.dial, Lookup: g.lookup, Checkers: g.checkers})
	m.src = &source{pool: m.pool, hosts: g.hosts.Load, log: log}
	g.setSource(m, lc, p)
	m.pool.MarkDrained(g.received.Drained(lc.Name)) // before it serves: a handover keeps the marks
	m.ln = g.newListener(lc.Name, ln, m.pool, log)
	m.ln.SetLimits(limitsOf(lc, m.peers))
	m.ln.SetTLS(ld.serve)
	go m.ln.Serve()
	log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "endpoints": endpointAddrs(m.pool)}).Info("listener ready")
	warnIdentityLeak(log, lc)
	return m
}

// update applies lc, whose files ld holds, to a running listener; ln is its
// new socket when the listen address changed, else nil; p holds its SRV
// discovery when that was resolved anew.
func (g *Group) update(m *running, lc config.Listener, ln net.Listener, p *prepared, ld loaded) (bool, EndpointDiff) {
	_, resolved := p.srv[lc.Name]
	same := equalListener(m.cfg, lc)
	if same && !resolved && p.hosts == nil {
		return false, EndpointDiff{}
	}
	log := g.log.WithField("listener", lc.Name)
	if !same { // only changed listeners have their settings (and TLS files) loaded
		m.pool.SetSettings(ld.pool)
		m.ln.SetTLS(ld.serve)
		m.peers = ld.peers
		warnIdentityLeak(log, lc)
	}
	var ed EndpointDiff
	ed.Added, ed.Removed = g.setSource(m, lc, p)
	undrainReturned(m.pool, ed.Added)
	for _, l := range m.prev {
		l.SetLimits(limitsOf(lc, m.peers))
	}
	m.ln.SetLimits(limitsOf(lc, m.peers))
	if ln != nil {
		old := m.ln
		m.ln = g.newListener(lc.Name, ln, m.pool, log)
		m.ln.SetLimits(limitsOf(lc, m.peers))
		m.ln.SetTLS(old.TLS())
		go m.ln.Serve()
		_ = old.Close()
		g.draining = append(g.draining, old)
		m.prev = append(m.prev, old)
		log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "old-addr": old.Addr().String()}).Info("listener re-bound")
	}
	m.cfg = lc
	return true, ed
}

// newListener makes a running listener's listener on ln, sharing the group's
// forwarder and descriptor budget. listener.New fails only without a
// forwarder, and NewGroup was given one: commit, which can't fail, calls
// it.
func (g *Group) newListener(name string, ln net.Listener, pool *upstream.Pool, log logrus.FieldLogger) *listener.Listener {
	l, err := listener.New(name, ln, pool, listener.Options{Forwarder: g.fwd, Budget: g.fds, Log: log})
	if err != nil {
		panic(fmt.Sprintf("reconcile: %v: NewGroup was given no forwarder", err))
	}
	return l
}

// warnIdentityLeak logs config.IdentityLeak's warning when lc lends the
// gateway's etcd client certificate to every local user.
func warnIdentityLeak(log logrus.FieldLogger, lc config.Listener) {
	if w := config.IdentityLeak(lc); w != "" {
		log.Warn(w)
	}
}

// equalListener reports whether two listener configs are the same in every
// key, so that a key added later can't be forgotten here.
func equalListener(a, b config.Listener) bool { return reflect.DeepEqual(a, b) }

// stop shuts a removed listener down as at gateway shutdown.
func (g *Group) stop(m *running, timeout time.Duration) {
	m.src.stopSRV()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = m.ln.Shutdown(ctx)
	m.pool.Close()
	g.log.WithField("listener", m.cfg.Name).Info("listener stopped")
}

// pruneDraining forgets draining listeners that are closed and whose
// connections have all ended, keeping their counts in their running listener's base.
func (g *Group) pruneDraining() {
	g.draining = slices.DeleteFunc(g.draining, func(l *listener.Listener) bool {
		if l.Serving() || l.OpenConns() != 0 {
			return false
		}
		l.StopIdleReaper()
		return true
	})
	for _, m := range g.listeners {
		m.prev = slices.DeleteFunc(m.prev, func(l *listener.Listener) bool {
			if l.OpenConns() != 0 {
				return false
			}
			// Closed and without connections: its counts are final.
			m.base = m.base.Add(l.Counters())
			return true
		})
	}
}

// Listeners returns the running listeners, by name.
func (g *Group) Listeners() map[string]*listener.Listener {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]*listener.Listener, len(g.listeners))
	for name, m := range g.listeners {
		out[name] = m.ln
	}
	return out
}

// Shutdown stops every listener from accepting, waits for open connections
// to end until ctx is done, then closes the rest and stops the pools.
func (g *Group) Shutdown(ctx context.Context) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	g.mu.Lock()
	var ls []*listener.Listener
	var pools []*upstream.Pool
	for name, m := range g.listeners {
		ls = append(ls, m.ln)
		pools = append(pools, m.pool)
		m.src.stopSRV()
		delete(g.listeners, name)
	}
	ls = append(ls, g.draining...)
	g.draining = nil
	g.mu.Unlock()
	if h := g.hosts.Load(); h != nil {
		defer h.Close()
	}

	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Shutdown(ctx)
		}()
	}
	wg.Wait()
	for _, p := range pools {
		p.Close()
	}
	return errors.Join(errs...)
}
