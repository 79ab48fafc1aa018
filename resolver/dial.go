package resolver

import (
	"context"
	"errors"
	"net"
)

// Dialer returns the function that dials discovered endpoints: a
// net.Dialer whose host-name lookups (the A and AAAA records of SRV
// targets) go to dnsServer, a host:port, so that a member whose address
// record changes is followed at the next dial. With dnsServer empty it uses
// the system resolver. Nothing is cached: every dial looks the name up.
// It sets no TCP keepalive: the caller does, once, with its own period.
//
// Its type is that of upstream.DialFunc; it is not named here so that this
// package need not import upstream.
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
