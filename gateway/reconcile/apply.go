package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// prepared is what Apply prepared before changing anything.
type prepared struct {
	// hosts is a new name cache, when dns-server changed; nil otherwise.
	hosts *resolver.Hosts
	// srv holds, per listener, its SRV discovery when it is new or
	// changed, with its first resolution.
	srv      map[string]srvPrepared
	settings map[string]loaded
	bound    map[string]net.Listener
	// perms are the new permissions of the unix sockets that stay bound.
	perms map[string]socketChange
}

// srvPrepared is the first resolution of a new or changed SRV discovery; err
// is set when DNS could not be reached.
type srvPrepared struct {
	srv   resolver.SRV
	first resolver.Result
	err   error
}

// abort undoes what a prepared reload that is not committed holds.
func (p *prepared) abort() {
	if p == nil {
		return
	}
	for _, ln := range p.bound {
		_ = ln.Close()
	}
	if p.hosts != nil {
		p.hosts.Close()
	}
}

// prepare does the slow and failing work of an Apply, without g.mu: the
// running listeners it reads are changed only under applyMu, which the caller holds.
func (g *Group) prepare(ctx context.Context, s *config.Snapshot) (*prepared, error) {
	p := &prepared{srv: map[string]srvPrepared{}, settings: map[string]loaded{}, bound: map[string]net.Listener{}, perms: map[string]socketChange{}}
	hosts := g.hosts.Load()
	if hosts == nil || hosts.DNSServer() != s.DNSServer {
		p.hosts = resolver.NewHosts(resolver.HostsOptions{
			DNSServer: s.DNSServer, Limits: g.hostLimits(s), Log: g.log, OnChange: g.hostChanged,
		})
		hosts = p.hosts
	}
	err := errors.Join(g.prepareDNS(ctx, s, p, hosts), g.prepareFiles(s, p))
	return p, errors.Join(err, g.bind(ctx, s, p))
}

// prepareDNS resolves, at the same time, every SRV discovery that is new
// or changed and every static host name new to its listener. A name or a
// discovery that DNS says does not exist is an error; DNS that does not
// answer is not.
func (g *Group) prepareDNS(ctx context.Context, s *config.Snapshot, p *prepared, hosts *resolver.Hosts) error {
	ctx, cancel := context.WithTimeout(ctx, resolver.DefaultTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for _, lc := range s.Listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.prepareListenerDNS(ctx, s, lc, p, &mu, hosts); err != nil {
				fail(s.ListenerError(lc.Name, err))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prepareListenerDNS is prepareDNS for one listener; mu guards p.srv.
func (g *Group) prepareListenerDNS(ctx context.Context, s *config.Snapshot, lc config.Listener, p *prepared, mu *sync.Mutex, hosts *resolver.Hosts) error {
	m := g.listeners[lc.Name]
	if lc.DiscoverySRV == "" {
		return checkNames(hosts.Resolve(ctx, newNames(m, lc, p.hosts != nil)))
	}
	var src *source
	if m != nil {
		src = m.src
	}
	if !srvChanged(src, lc, s.DNSServer, p.hosts != nil) {
		return nil
	}
	srv := resolver.FromConfig(s.DNSServer, lc)
	withHosts := srv
	withHosts.Hosts = hosts
	res, err := withHosts.Resolve(ctx)
	if err != nil && !res.Unreachable() {
		return keyErr("discovery-srv", err)
	}
	// The targets are resolved before the pool has them, as static names
	// are: the forwarder's loops connect at cached addresses and don't
	// wait for a first lookup. A target DNS can't resolve is the pool's
	// to skip, as later.
	hosts.Resolve(ctx, hostNames(res.Endpoints))
	mu.Lock()
	defer mu.Unlock()
	p.srv[lc.Name] = srvPrepared{srv: srv, first: res, err: err}
	return nil
}

// newNames returns the host names of lc's static endpoints that m (nil for
// a new listener) does not have already; all of them when the name cache
// is new.
func newNames(m *running, lc config.Listener, all bool) []string {
	names := hostNames(resolver.Static(lc.Endpoints))
	if m == nil || all {
		return names
	}
	old := hostNames(resolver.Static(m.cfg.Endpoints))
	return slices.DeleteFunc(names, func(n string) bool { return slices.Contains(old, n) })
}

// checkNames returns an error naming each name DNS says does not exist.
func checkNames(states []resolver.HostState) error {
	var errs []error
	for _, st := range states {
		if st.Gone {
			errs = append(errs, keyErr("endpoints", fmt.Errorf("host name %q: DNS says it does not exist (NXDOMAIN or no A/AAAA record)", st.Name)))
		}
	}
	return errors.Join(errs...)
}

// prepareFiles loads the pool settings (TLS files) of every listener that
// is new or changed.
func (g *Group) prepareFiles(s *config.Snapshot, p *prepared) error {
	var errs []error
	for _, lc := range s.Listeners {
		if m, ok := g.listeners[lc.Name]; ok && equalListener(m.cfg, lc) {
			continue
		}
		ps, err := poolSettings(lc)
		if err != nil {
			errs = append(errs, s.ListenerError(lc.Name, err))
			continue
		}
		st, err := serverTLS(lc.TLS)
		if err != nil {
			errs = append(errs, s.ListenerError(lc.Name, err))
			continue
		}
		peers, err := peersOf(lc)
		if err != nil {
			errs = append(errs, s.ListenerError(lc.Name, err))
			continue
		}
		p.settings[lc.Name] = loaded{pool: ps, serve: st, peers: peers}
	}
	return errors.Join(errs...)
}

// bind binds every listen address that is new.
func (g *Group) bind(ctx context.Context, s *config.Snapshot, p *prepared) error {
	var errs []error
	for _, lc := range s.Listeners {
		if m, ok := g.listeners[lc.Name]; ok && m.cfg.ListenAddr == lc.ListenAddr {
			if err := g.keepSocket(m, lc, p); err != nil {
				errs = append(errs, s.ListenerError(lc.Name, err))
			}
			continue
		}
		ln, err := g.listen(ctx, lc) // handover.go: a received socket, or a new one
		if err != nil {
			errs = append(errs, s.ListenerError(lc.Name, err))
			if ln != nil {
				_ = ln.Close()
			}
			continue
		}
		p.bound[lc.Name] = ln
	}
	return errors.Join(errs...)
}

// keepSocket prepares what changes on a socket that stays bound: the
// mode, owner and group of a unix socket's file, applied at commit
// without re-binding. It checks that a systemd socket that gets an
// allow-list is a unix socket.
func (g *Group) keepSocket(m *running, lc config.Listener, p *prepared) error {
	if err := checkPeersOn(m.ln.Addr(), lc); err != nil {
		return err
	}
	if network, path := config.SplitListenAddr(lc.ListenAddr); network == config.NetworkUnix &&
		(m.cfg.SocketMode != lc.SocketMode || m.cfg.SocketOwner != lc.SocketOwner || m.cfg.SocketGroup != lc.SocketGroup) {
		perms, err := lc.SocketPerms()
		if err != nil {
			return err
		}
		p.perms[lc.Name] = socketChange{path: path, perms: perms}
	}
	return nil
}

// socketChange is new permissions for the file of a bound unix socket.
type socketChange struct {
	path  string
	perms config.SocketPerms
}

// commit applies a prepared reload; the caller holds applyMu and mu. It
// does no DNS or file work and can't fail.
func (g *Group) commit(s *config.Snapshot, p *prepared) Diff {
	if p.hosts != nil {
		if old := g.hosts.Swap(p.hosts); old != nil {
			defer old.Close()
		}
	}
	g.hosts.Load().SetLimits(g.hostLimits(s))
	diff := Diff{Endpoints: map[string]EndpointDiff{}}
	want := map[string]bool{}
	for _, lc := range s.Listeners {
		want[lc.Name] = true
		g.commitListener(lc, p, &diff)
	}
	for name, ch := range p.perms {
		// Only the owner lost the right to chown since prepare: say so.
		if err := setSocketPerms(ch.path, ch.perms); err != nil {
			g.log.WithFields(logrus.Fields{"listener": name, "error": err.Error()}).Error("unix socket's permissions not changed")
		}
	}
	for name, m := range g.listeners {
		if want[name] {
			continue
		}
		delete(g.listeners, name)
		diff.Removed = append(diff.Removed, name)
		g.draining = append(g.draining, m.ln) // a Shutdown meanwhile drains it too
		go g.stop(m, s.ShutdownTimeout)
	}
	g.pruneDraining()
	g.retainNamesLocked()
	slices.Sort(diff.Added)
	slices.Sort(diff.Removed)
	slices.Sort(diff.Changed)
	return diff
}

// commitListener starts or updates the running listener of lc and records it in diff.
func (g *Group) commitListener(lc config.Listener, p *prepared, diff *Diff) {
	m, ok := g.listeners[lc.Name]
	if !ok {
		m = g.start(lc, p.bound[lc.Name], p, p.settings[lc.Name])
		g.listeners[lc.Name] = m
		diff.Added = append(diff.Added, lc.Name)
		diff.Endpoints[lc.Name] = EndpointDiff{Added: endpointAddrs(m.pool)}
		return
	}
	if changed, ed := g.update(m, lc, p.bound[lc.Name], p, p.settings[lc.Name]); changed {
		diff.Changed = append(diff.Changed, lc.Name)
		if len(ed.Added) > 0 || len(ed.Removed) > 0 {
			diff.Endpoints[lc.Name] = ed
		}
	}
}

// setSource points m's pool at lc's endpoints and returns the addresses
// added and removed. Static endpoints replace the set and stop any SRV
// refresh; a new or changed SRV discovery replaces the set with its first
// resolution and (re)starts the refresh; an unchanged one is left running.
// When DNS could not be reached, the listener keeps what it has (nothing,
// when new) until its discovery answers.
func (g *Group) setSource(m *running, lc config.Listener, p *prepared) (added, removed []string) {
	if lc.DiscoverySRV == "" {
		m.src.stopSRV()
		m.src.setWaiting("")
		return m.src.set(resolver.Static(lc.Endpoints))
	}
	sp, ok := p.srv[lc.Name]
	if !ok {
		return nil, nil
	}
	m.dns.Record(sp.first, sp.err)
	if sp.err != nil {
		m.src.setWaiting(fmt.Sprintf("SRV discovery of %q: DNS could not be reached, retrying: %v", lc.DiscoverySRV, sp.err))
		g.log.WithFields(logrus.Fields{"listener": lc.Name, "error": sp.err.Error(), "source": "dns"}).
			Warn("SRV discovery could not reach DNS; the listener serves once DNS answers")
	} else {
		m.src.setWaiting("")
		added, removed = m.src.set(sp.first.Endpoints)
	}
	m.src.startSRV(sp.srv, lc.DNSRefresh, g.minRefresh, sp.first, m.dns)
	return added, removed
}

// dial is every pool's dial function: through the name cache in force.
func (g *Group) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return g.hosts.Load().Dial(ctx, network, addr)
}

// lookup is every pool's lookup: the cached addresses of a name in the
// cache in force, for the forwarder's loops, which don't wait for DNS.
func (g *Group) lookup(name string) ([]netip.Addr, error) {
	return g.hosts.Load().Addrs(name)
}

// hostChanged republishes the sources that use name, whose addresses
// changed or which DNS found gone or back.
func (g *Group) hostChanged(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.listeners {
		if m.src.uses(name) {
			m.src.republish()
		}
	}
}

// retainNamesLocked stops resolving the names no running listener uses any more.
// The caller holds mu.
func (g *Group) retainNamesLocked() {
	used := map[string]bool{}
	for _, m := range g.listeners {
		for _, n := range m.src.names() {
			used[n] = true
		}
	}
	g.hosts.Load().Retain(func(n string) bool { return used[n] })
}

// hostLimits are the name cache's limits for s: refreshed at most every
// shortest dns-refresh of its listeners.
func (g *Group) hostLimits(s *config.Snapshot) resolver.HostLimits {
	l := resolver.HostLimits{Refresh: config.DefaultDNSRefresh, MinRefresh: g.minRefresh, StaleMax: s.DNSStaleMax}
	for i, lc := range s.Listeners {
		if i == 0 || lc.DNSRefresh < l.Refresh {
			l.Refresh = lc.DNSRefresh
		}
	}
	return l
}
