package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// Group runs the listeners of a configuration and applies each new
// snapshot to them as a diff: listeners are started, stopped, re-bound, and
// their pools updated in place, without closing open connections.
type Group struct {
	log logrus.FieldLogger

	mu      sync.Mutex
	members map[string]*member
	retired []*Listener // closed listeners whose connections may still be open
	fds     *fdBudget   // shared by the listeners: see fds.go
}

// member is one configured listener and its live objects.
type member struct {
	cfg  config.Listener
	pool *upstream.Pool
	ln   *Listener
	dial dialSwitch  // the pool's dial function
	srv  *srvRefresh // running SRV refresh, nil for static endpoints
	// prev are the member's listeners closed by re-binds that still have
	// open connections; base holds the counts of those that had none left.
	// With them the member's counters go on across re-binds.
	prev []*Listener
	base Counters
	// dns counts the lookups of the member's SRV source.
	dns *resolver.LookupCounters
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

// NewGroup returns a group with no listeners.
func NewGroup(log logrus.FieldLogger) *Group {
	return &Group{log: log, members: map[string]*member{}, fds: newFDBudget()}
}

// Apply makes the running listeners match s. The TLS files of new and
// changed listeners are read and every new address is bound first; if a
// file can't be loaded or an address bound, nothing changes and the error
// names the listener and the key. Settings apply to new connections; open connections
// are never closed by Apply itself (a removed endpoint's connections follow
// its listener's on-endpoint-removed policy, a removed listener's are
// drained as at shutdown).
func (g *Group) Apply(ctx context.Context, s *config.Snapshot) (Diff, error) {
	g.mu.Lock()
	defer g.mu.Unlock()

	diff := Diff{Endpoints: map[string]EndpointDiff{}}
	want := make(map[string]config.Listener, len(s.Listeners))
	for _, lc := range s.Listeners {
		want[lc.Name] = lc
	}

	// Resolve every SRV discovery that is new or changed, before touching
	// anything.
	sources, err := g.prepareSources(ctx, s)
	if err != nil {
		return Diff{}, err
	}

	// Load the pool settings (TLS files) of every listener that is new or
	// changed, and bind every address that is new, before touching
	// anything.
	settings := map[string]loaded{}
	var loadErr error
	for _, lc := range s.Listeners {
		if m, ok := g.members[lc.Name]; ok && equalListener(m.cfg, lc) {
			continue
		}
		ps, err := poolSettings(lc)
		if err != nil {
			loadErr = errors.Join(loadErr, settingsError(s.File, lc.Name, err))
			continue
		}
		st, err := serverTLS(lc.TLS)
		if err != nil {
			loadErr = errors.Join(loadErr, settingsError(s.File, lc.Name, err))
			continue
		}
		settings[lc.Name] = loaded{pool: ps, serve: st}
	}
	bound := map[string]net.Listener{}
	bindErr := loadErr
	for _, lc := range s.Listeners {
		if m, ok := g.members[lc.Name]; ok && m.cfg.ListenAddr == lc.ListenAddr {
			continue
		}
		// Keepalive is set on each accepted connection from the
		// listener's limits, which a reload may change.
		ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(ctx, "tcp", lc.ListenAddr)
		if err != nil {
			bindErr = errors.Join(bindErr, fmt.Errorf("%s: listener %q: key \"listen-addr\": %w", fileName(s.File), lc.Name, err))
			continue
		}
		bound[lc.Name] = ln
	}
	if bindErr != nil {
		for _, ln := range bound {
			_ = ln.Close()
		}
		return Diff{}, bindErr
	}

	for _, lc := range s.Listeners {
		m, ok := g.members[lc.Name]
		if !ok {
			m = g.start(lc, bound[lc.Name], sources[lc.Name], settings[lc.Name])
			g.members[lc.Name] = m
			diff.Added = append(diff.Added, lc.Name)
			diff.Endpoints[lc.Name] = EndpointDiff{Added: endpointAddrs(m.pool)}
			continue
		}
		if changed, ed := g.update(m, lc, bound[lc.Name], sources[lc.Name], settings[lc.Name]); changed {
			diff.Changed = append(diff.Changed, lc.Name)
			if len(ed.Added) > 0 || len(ed.Removed) > 0 {
				diff.Endpoints[lc.Name] = ed
			}
		}
	}
	for name, m := range g.members {
		if _, ok := want[name]; ok {
			continue
		}
		delete(g.members, name)
		diff.Removed = append(diff.Removed, name)
		go g.stop(m, s.ShutdownTimeout)
	}
	g.pruneRetired()
	slices.Sort(diff.Added)
	slices.Sort(diff.Removed)
	slices.Sort(diff.Changed)
	return diff, nil
}

func fileName(f string) string {
	if f == "" {
		return "command line"
	}
	return f
}

func limitsOf(lc config.Listener) Limits {
	return Limits{MaxConns: int64(lc.MaxConnections), IdleTimeout: lc.IdleTimeout, KeepAlive: lc.KeepAlive}
}

// loaded is what Apply read from a listener's files before changing
// anything: its pool settings and the TLS it serves (nil for plain TCP).
type loaded struct {
	pool  upstream.Settings
	serve *tls.Config
}

// start builds the pool and listener of a new member and starts serving.
func (g *Group) start(lc config.Listener, ln net.Listener, src source, ld loaded) *member {
	log := g.log.WithField("listener", lc.Name)
	m := &member{cfg: lc, dns: &resolver.LookupCounters{}}
	m.pool = upstream.NewPool(upstream.Options{Settings: ld.pool, Log: log, Dial: m.dial.dial})
	g.setSource(m, lc, src)
	m.ln = New(lc.Name, ln, m.pool, log)
	m.ln.fds = g.fds
	m.ln.SetLimits(limitsOf(lc))
	m.ln.SetTLS(ld.serve)
	go func() { _ = m.ln.Serve() }()
	log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "endpoints": endpointAddrs(m.pool)}).Info("listener ready")
	return m
}

// update applies lc, whose files ld holds, to a running member; ln is its
// new socket when the listen address changed, else nil; src is its SRV
// source when that was resolved anew.
func (g *Group) update(m *member, lc config.Listener, ln net.Listener, src source, ld loaded) (bool, EndpointDiff) {
	same := equalListener(m.cfg, lc)
	if same && src.first == nil {
		return false, EndpointDiff{}
	}
	log := g.log.WithField("listener", lc.Name)
	if !same { // only changed listeners have their settings (and TLS files) loaded
		m.pool.SetSettings(ld.pool)
		m.ln.SetTLS(ld.serve)
	}
	var ed EndpointDiff
	ed.Added, ed.Removed = g.setSource(m, lc, src)
	for _, l := range m.prev {
		l.SetLimits(limitsOf(lc))
	}
	m.ln.SetLimits(limitsOf(lc))
	if ln != nil {
		old := m.ln
		m.ln = New(lc.Name, ln, m.pool, log)
		m.ln.fds = g.fds
		m.ln.SetLimits(limitsOf(lc))
		m.ln.SetTLS(old.TLS())
		go func() { _ = m.ln.Serve() }()
		_ = old.Close()
		g.retired = append(g.retired, old)
		m.prev = append(m.prev, old)
		log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "old-addr": old.Addr().String()}).Info("listener re-bound")
	}
	m.cfg = lc
	return true, ed
}

// equalListener reports whether two listener configs are the same in every
// key, so that a key added later can't be forgotten here.
func equalListener(a, b config.Listener) bool { return reflect.DeepEqual(a, b) }

// stop shuts a removed member down as at gateway shutdown.
func (g *Group) stop(m *member, timeout time.Duration) {
	if m.srv != nil {
		m.srv.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = m.ln.Shutdown(ctx)
	m.pool.Close()
	g.log.WithField("listener", m.cfg.Name).Info("listener stopped")
}

// pruneRetired forgets retired listeners whose connections have all ended,
// keeping their counts in their member's base.
func (g *Group) pruneRetired() {
	g.retired = slices.DeleteFunc(g.retired, func(l *Listener) bool {
		if l.OpenConns() != 0 {
			return false
		}
		l.cancel() // ends its idle reaper
		return true
	})
	for _, m := range g.members {
		m.prev = slices.DeleteFunc(m.prev, func(l *Listener) bool {
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
func (g *Group) Listeners() map[string]*Listener {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]*Listener, len(g.members))
	for name, m := range g.members {
		out[name] = m.ln
	}
	return out
}

// Shutdown stops every listener from accepting, waits for open connections
// to end until ctx is done, then closes the rest and stops the pools.
func (g *Group) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	var ls []*Listener
	var pools []*upstream.Pool
	for name, m := range g.members {
		ls = append(ls, m.ln)
		pools = append(pools, m.pool)
		if m.srv != nil {
			m.srv.stop()
		}
		delete(g.members, name)
	}
	ls = append(ls, g.retired...)
	g.retired = nil
	g.mu.Unlock()

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
