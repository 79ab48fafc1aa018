package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// CheckDiscovery resolves the SRV discovery of every listener of snap that
// has one, as the gateway does at start, and writes to w what each found:
// the names queried, each endpoint, each dropped record and why. It returns
// an error, naming the listener and the names queried, for every listener
// that finds no usable endpoint, since the gateway would refuse to start.
func CheckDiscovery(ctx context.Context, w io.Writer, snap *config.Snapshot) error {
	var errs []error
	for _, l := range snap.Listeners {
		if l.DiscoverySRV == "" {
			continue
		}
		srv := resolver.FromConfig(snap.DNSServer, l)
		dnsServer := snap.DNSServer
		if dnsServer == "" {
			dnsServer = "system resolver"
		}
		fmt.Fprintf(w, "\nlistener %q: SRV discovery of %s (%s)\n", l.Name, srv.Domain, dnsServer)
		res, err := srv.Resolve(ctx)
		res.Describe(w)
		if err != nil {
			file := snap.File
			if file == "" {
				file = "command line"
			}
			errs = append(errs, fmt.Errorf("%s: listener %q: key \"discovery-srv\": %w", file, l.Name, err))
		}
	}
	return errors.Join(errs...)
}
