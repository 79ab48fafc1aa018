package reconcile

import (
	"slices"
	"strings"

	"github.com/etcd-gateway/etcd-gateway/upstream"

	"github.com/etcd-gateway/etcd-gateway/listener"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// Status is a point-in-time view of one configured listener, read from its
// live counters; the admin server's /status and /metrics are built from it.
type Status struct {
	// Config is the listener's configuration in force.
	Config config.Listener
	// Addr is the address the listener is bound to.
	Addr string
	// Serving reports whether the listener accepts connections.
	Serving bool
	// Limits are the limits in force.
	Limits listener.Limits
	// OpenConns counts the open client connections, including those made
	// on an address the listener was re-bound from.
	OpenConns int64
	// Counters are the listener's counts since it was added; a re-bind
	// doesn't reset them.
	Counters listener.Counters
	// Failovers counts the connections served after a dial to another
	// endpoint failed for them.
	Failovers uint64
	// DNS counts the lookups of an SRV source; nil for static endpoints.
	DNS *resolver.LookupCounters
	// SRV is what the SRV discovery last saw; nil for static endpoints.
	SRV *resolver.SRVState
	// Names is what DNS said of each host name of the listener's
	// endpoints (configured, discovered and found by member sync).
	Names []resolver.HostState
	// Waiting says why the listener can't serve new clients now (its SRV
	// discovery has not reached DNS yet, or no endpoint has an address);
	// "" when it can.
	Waiting string
	// Endpoints are the endpoints of the pool now, in pool order. Removed
	// endpoints are not included.
	Endpoints []EndpointStatus
	// ClusterAlarms are the alarms every member of the pool reports.
	ClusterAlarms []upstream.ClusterAlarm
}

// EndpointStatus is a point-in-time view of one endpoint of a pool.
type EndpointStatus struct {
	resolver.Endpoint
	// Addresses are the IP addresses dials use, for an endpoint given by
	// host name; nil for an IP address.
	Addresses []string
	// EndpointStats are its state and counters; updates that keep the
	// endpoint don't reset them.
	upstream.EndpointStats
}

// Status returns a view of every running listener, ordered by name.
func (g *Group) Status() []Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Status, 0, len(g.listeners))
	for _, m := range g.listeners {
		st := Status{
			Config:    m.cfg,
			Addr:      m.ln.Addr().String(),
			Serving:   m.ln.Serving(),
			Limits:    m.ln.Limits(),
			OpenConns: m.ln.OpenConns(),
			Counters:  m.base.Add(m.ln.Counters()),
			Failovers: m.pool.Stats().Failovers,

			ClusterAlarms: m.pool.ClusterAlarms(),
		}
		for _, l := range m.prev {
			st.OpenConns += l.OpenConns()
			st.Counters = st.Counters.Add(l.Counters())
		}
		if m.cfg.DiscoverySRV != "" {
			st.DNS = m.dns
			srv := m.dns.State()
			st.SRV = &srv
		}
		names := g.names(m)
		for _, n := range names {
			st.Names = append(st.Names, n)
		}
		slices.SortFunc(st.Names, func(a, b resolver.HostState) int { return strings.Compare(a.Name, b.Name) })
		st.Waiting = waiting(m, names)
		for _, ep := range m.pool.Endpoints() {
			st.Endpoints = append(st.Endpoints, EndpointStatus{
				Endpoint:      ep.Record(),
				Addresses:     addresses(names, ep.Addr()),
				EndpointStats: ep.Stats(),
			})
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Config.Name, b.Config.Name) })
	return out
}

// names returns what the name cache knows of m's host names.
func (g *Group) names(m *running) map[string]resolver.HostState {
	hosts := g.hosts.Load()
	out := map[string]resolver.HostState{}
	for _, n := range m.src.names() {
		if st, ok := hosts.State(n); ok {
			out[n] = st
		} else {
			out[n] = resolver.HostState{Name: n, Pending: true}
		}
	}
	return out
}

// addresses returns the addresses in use for addr's host, nil for an IP.
func addresses(names map[string]resolver.HostState, addr string) []string {
	st, ok := names[hostOf(addr)]
	if !ok {
		return nil
	}
	out := make([]string, len(st.Addrs))
	for i, a := range st.Addrs {
		out[i] = a.String()
	}
	return out
}

// waiting says why m can't serve new clients, or "".
func waiting(m *running, names map[string]resolver.HostState) string {
	if w := m.src.Waiting(); w != "" {
		return w
	}
	eps := m.pool.Endpoints()
	if len(eps) == 0 {
		return "no endpoints: DNS says every endpoint's host name is gone"
	}
	var why []string
	for _, ep := range eps {
		st, ok := names[hostOf(ep.Addr())]
		if !ok || len(st.Addrs) > 0 {
			return ""
		}
		why = append(why, st.Name+": "+st.Why())
	}
	return "no endpoint has an address to dial: " + strings.Join(why, "; ")
}

// AcceptPauses returns how many times the group's accept loops paused so
// far because few file descriptors were left, and how many are paused now.
func (g *Group) AcceptPauses() (total uint64, now int64) { return g.fds.AcceptPauses() }
