package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// CheckDiscovery resolves what the gateway would resolve at start, and
// writes to w what it found: for each listener with SRV discovery the names
// queried, each endpoint, each dropped record and why; for each static
// host name its addresses. It returns an error, naming the listener and
// the key, for every SRV discovery that finds no usable endpoint and every
// host name that does not resolve.
func CheckDiscovery(ctx context.Context, w io.Writer, snap *config.Snapshot) error {
	hosts := resolver.NewHosts(resolver.HostsOptions{DNSServer: snap.DNSServer})
	defer hosts.Close()
	var errs []error
	for _, l := range snap.Listeners {
		var err error
		if l.DiscoverySRV != "" {
			err = checkSRV(ctx, w, snap, l)
		} else {
			err = checkNames(ctx, w, hosts, snap, l)
		}
		if err != nil {
			errs = append(errs, snap.ListenerError(l.Name, err))
		}
	}
	return errors.Join(errs...)
}

func checkSRV(ctx context.Context, w io.Writer, snap *config.Snapshot, l config.Listener) error {
	srv := resolver.FromConfig(snap.DNSServer, l)
	fmt.Fprintf(w, "\nlistener %q: SRV discovery of %s (%s)\n", l.Name, srv.Domain, dnsServerName(snap))
	res, err := srv.Resolve(ctx)
	res.Describe(w)
	if err != nil {
		return &config.KeyError{Key: "discovery-srv", Err: err}
	}
	return nil
}

// checkNames resolves the host names of l's static endpoints.
func checkNames(ctx context.Context, w io.Writer, hosts *resolver.Hosts, snap *config.Snapshot, l config.Listener) error {
	var names []string
	for _, ep := range l.Endpoints {
		if host, _, err := net.SplitHostPort(ep); err == nil && resolver.IsName(host) && !slices.Contains(names, host) {
			names = append(names, host)
		}
	}
	if len(names) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nlistener %q: host names (%s)\n", l.Name, dnsServerName(snap))
	var errs []error
	for _, st := range hosts.Resolve(ctx, names) {
		if len(st.Addrs) > 0 {
			fmt.Fprintf(w, "  %s\t%v\n", st.Name, st.Addrs)
			continue
		}
		fmt.Fprintf(w, "  %s\tdid not resolve: %s\n", st.Name, st.Why())
		errs = append(errs, &config.KeyError{Key: "endpoints", Err: fmt.Errorf("host name %q did not resolve: %s", st.Name, st.Why())})
	}
	return errors.Join(errs...)
}

func dnsServerName(snap *config.Snapshot) string {
	if snap.DNSServer == "" {
		return "system resolver"
	}
	return snap.DNSServer
}
