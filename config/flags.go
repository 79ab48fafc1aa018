package config

import (
	"reflect"
	"slices"
	"time"
)

// DefaultListenerName is the name of the one listener of a snapshot built
// from command-line flags.
const DefaultListenerName = "default"

// Flags holds the values of the flags of etcd's `etcd gateway start`, which
// etcd-gateway accepts as well, for a single listener without a
// configuration file. DefaultFlags returns etcd's defaults.
type Flags struct {
	// ListenAddr is --listen-addr.
	ListenAddr string
	// Endpoints is --endpoints, split at commas.
	Endpoints []string
	// RetryDelay is --retry-delay.
	RetryDelay time.Duration
	// DiscoverySRV is --discovery-srv.
	DiscoverySRV string
	// DiscoverySRVName is --discovery-srv-name.
	DiscoverySRVName string
	// InsecureDiscovery is --insecure-discovery.
	InsecureDiscovery bool
	// TrustedCAFile is --trusted-ca-file.
	TrustedCAFile string
}

// DefaultFlags returns the flag values etcd's gateway starts with: listen on
// 127.0.0.1:23790, forward to 127.0.0.1:2379, retry-delay 1m. Use them as
// the flags' defaults.
func DefaultFlags() Flags {
	return Flags{
		ListenAddr: DefaultListenAddr,
		Endpoints:  []string{DefaultEndpoint},
		RetryDelay: DefaultRetryDelay,
	}
}

// FromFlags builds a snapshot with one listener, named "default", from
// command-line flags. Settings without a flag take the same defaults as in
// a file, and the values are validated as in a file; problems name the
// flags (e.g. --endpoints). File is empty.
//
// A zero field is not replaced by its default: start from DefaultFlags.
// When DiscoverySRV is set and Endpoints is still etcd's default, Endpoints
// is ignored, so that --discovery-srv alone works as in etcd; other
// endpoints together with --discovery-srv are an error.
func FromFlags(f Flags) (*Snapshot, error) {
	c := newCollector(true)
	l := defaultListener()
	l.Name = DefaultListenerName
	l.ListenAddr = f.ListenAddr
	l.DiscoverySRV = f.DiscoverySRV
	l.DiscoverySRVName = f.DiscoverySRVName
	l.InsecureDiscovery = f.InsecureDiscovery
	l.TrustedCAFile = f.TrustedCAFile
	l.RetryDelay = f.RetryDelay
	// etcd's gateway has no health checks. Flags carry no TLS settings,
	// so an etcd check could not reach the members of a TLS cluster
	// anyway.
	l.HealthCheck.Type = CheckNone
	l.OnUnhealthy = UnhealthyKeep
	// etcd's gateway gives a member that comes back its share at once.
	l.SlowStart = 0
	// Nor does it move a client it connected.
	l.Rebalance = false
	eps := f.Endpoints
	if f.DiscoverySRV != "" && slices.Equal(eps, []string{DefaultEndpoint}) {
		eps = nil
	}
	l.Endpoints, l.TLSEndpoints = cleanEndpoints(c, 0, eps)
	s := &Snapshot{Listeners: []Listener{l}}
	setDefaults(reflect.ValueOf(s), true)
	validateSnapshot(s, c)
	// The only listener is implicit: problems name just the flag.
	if err := c.err("", func(int) string { return "" }); err != nil {
		return nil, err
	}
	return s, nil
}
