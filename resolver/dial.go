package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrUnresolved is wrapped by the error of a dial to a host name that has
// no address to use: not resolved yet, gone from DNS, or expired by
// dns-stale-max. Such a failure is DNS's, not the member's.
var ErrUnresolved = errors.New("host name has no address")

// Dial dials addr (host:port) for the pool and its health checks: a
// host name is replaced by its cached addresses, tried in order, so that
// dials and checks reach the same addresses and never wait for DNS. A
// name not tracked yet is tracked, and this first dial waits for its first
// lookup within ctx. IP addresses are dialled as they are. It sets no TCP
// keepalive: the caller does, once, with its own period.
func (h *Hosts) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	d.KeepAlive = -1
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !IsName(host) {
		return d.DialContext(ctx, network, addr)
	}
	addrs, err := usable(h.await(ctx, h.track(host)))
	if err != nil {
		return nil, err
	}
	var last error
	for i, ip := range addrs {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil || i == len(addrs)-1 {
			break
		}
	}
	if len(addrs) > 1 {
		return nil, fmt.Errorf("%s: all %d addresses failed, the last: %w", host, len(addrs), last)
	}
	return nil, fmt.Errorf("%s: %w", host, last)
}

// Addrs returns the addresses a dial to host name uses now, in the order
// to try them, without waiting for DNS: for a caller that connects by
// itself (the forwarder's event loops, through the pool's Lookup). A name
// not tracked yet is tracked, and fails as not resolved yet. The error,
// when there is no address to use, wraps ErrUnresolved. The slice must
// not be modified.
func (h *Hosts) Addrs(name string) ([]netip.Addr, error) {
	return usable(*h.track(name).state.Load())
}

// usable returns st's addresses, or why there is none.
func usable(st HostState) ([]netip.Addr, error) {
	if len(st.Addrs) == 0 {
		return nil, fmt.Errorf("%w: %s: %s", ErrUnresolved, st.Name, st.Why())
	}
	return st.Addrs, nil
}

// Why says why a name has no address to dial.
func (st HostState) Why() string {
	switch {
	case st.Pending:
		return "not resolved yet"
	case st.Gone:
		return "DNS says it has no address (NXDOMAIN or no A/AAAA record)"
	case st.Expired:
		return "its last answer is older than dns-stale-max and lookups fail: " + st.LastError
	default:
		return "no lookup has succeeded yet: " + st.LastError
	}
}

// Dialer returns a dial function that looks host names up at every dial
// through dnsServer (host:port; empty means the system resolver), with no
// cache. `check` uses it, for one-off dials; the running gateway dials
// through Hosts.
func Dialer(dnsServer string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: -1}
	if dnsServer == "" {
		return d.DialContext
	}
	d.Resolver = &net.Resolver{
		PreferGo: true,
		// The Go resolver calls Dial with each server of /etc/resolv.conf
		// in turn; every query goes to dnsServer.
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, dnsServer)
		},
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		// The lookup error names the server of /etc/resolv.conf the
		// resolver meant to ask; name the one that was asked.
		if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) {
			dnsErr.Server = dnsServer
		}
		return c, err
	}
}
