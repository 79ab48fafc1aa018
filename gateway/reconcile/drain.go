package reconcile

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// Drained is what a drain of one endpoint did.
type Drained struct {
	// Endpoint is the endpoint's address as its pool has it (as written
	// in the file, or as discovered), whatever address the caller gave.
	Endpoint string
	upstream.DrainResult
	// Open counts the connections the endpoint still holds: none, unless
	// a connection outlived its close.
	Open int64
}

// Drain marks an endpoint of a listener drained, moves its connections
// and closes those still open when ctx ends (upstream.Pool.Drain). The
// mark stays across reloads that keep the address.
func (g *Group) Drain(ctx context.Context, listener, endpoint string) (Drained, error) {
	pool, addr, err := g.poolEndpoint(listener, endpoint)
	if err != nil {
		return Drained{}, err
	}
	res, err := pool.Drain(ctx, addr)
	out := Drained{Endpoint: addr, DrainResult: res}
	for _, ep := range pool.Endpoints() {
		if ep.Addr() == addr {
			out.Open = ep.OpenConns()
		}
	}
	if err != nil {
		return out, fmt.Errorf("listener %q: %w", listener, err)
	}
	return out, nil
}

// Undrain lets a drained endpoint of a listener take new connections
// again, and returns its address as its pool has it.
func (g *Group) Undrain(listener, endpoint string) (string, error) {
	pool, addr, err := g.poolEndpoint(listener, endpoint)
	if err != nil {
		return "", err
	}
	if err := pool.Undrain(addr); err != nil {
		return "", fmt.Errorf("listener %q: %w", listener, err)
	}
	return addr, nil
}

// poolEndpoint finds the pool of a listener and the address, in it, of
// endpoint: an address as the pool has it, or one of the IP addresses a
// host-name endpoint resolves to, with its port.
func (g *Group) poolEndpoint(listener, endpoint string) (*upstream.Pool, string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.listeners[listener]
	if !ok {
		return nil, "", fmt.Errorf("listener %q: no such listener (the running ones: %s)", listener, g.namesLocked())
	}
	var known []string
	for _, ep := range m.pool.Endpoints() {
		if ep.Addr() == endpoint || g.resolvesTo(ep.Addr(), endpoint) {
			return m.pool, ep.Addr(), nil
		}
		known = append(known, ep.Addr())
	}
	return nil, "", fmt.Errorf("listener %q: endpoint %s: %w (its endpoints: %s)", listener, endpoint, upstream.ErrUnknownEndpoint, strings.Join(known, ", "))
}

// resolvesTo reports whether addr, a host name and port, resolves to
// target, an IP address and port, in the name cache in force.
func (g *Group) resolvesTo(addr, target string) bool {
	want, err := netip.ParseAddrPort(target)
	host, port, serr := net.SplitHostPort(addr)
	if err != nil || serr != nil || port != strconv.Itoa(int(want.Port())) {
		return false
	}
	st, ok := g.hosts.Load().State(strings.ToLower(host))
	return ok && slices.Contains(st.Addrs, want.Addr().Unmap())
}

// namesLocked lists the running listeners' names; the caller holds mu.
func (g *Group) namesLocked() string {
	names := make([]string, 0, len(g.listeners))
	for n := range g.listeners {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// undrainReturned clears the drained mark of the addresses a reload
// added: an address taken out of the file loses its mark, and one that
// comes back may revive its old endpoint, mark and all.
func undrainReturned(pool *upstream.Pool, added []string) {
	for _, addr := range added {
		_ = pool.Undrain(addr) // present: it was just added
	}
}
