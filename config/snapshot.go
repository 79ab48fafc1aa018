// Package config reads the gateway's configuration file, decodes it strictly,
// validates it and produces immutable snapshots. It also watches the file and
// emits a new snapshot for every valid change.
package config

import "time"

// Defaults, as etcd's gateway has them where it has them.
const (
	DefaultConfigPath      = "/etc/etcd-gateway.yaml"
	DefaultListenAddr      = "127.0.0.1:23790"
	DefaultEndpoint        = "127.0.0.1:2379"
	DefaultRetryDelay      = time.Minute
	DefaultDialTimeout     = 3 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultDNSRefresh      = 30 * time.Second
	DefaultDrainTimeout    = 30 * time.Second
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "text"
	// DefaultKeepAlive is the TCP keepalive period on both sides of a
	// connection: Go's own default.
	DefaultKeepAlive = 15 * time.Second
)

// What to do with open connections to an endpoint removed by a reload.
const (
	RemovedKeep  = "keep"
	RemovedDrain = "drain"
	RemovedClose = "close"
)

// Snapshot is one validated configuration. It is never modified after it is
// built: a reload produces a new Snapshot.
type Snapshot struct {
	// File is the path the snapshot was read from; empty when it was built
	// from command-line flags.
	File            string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	// DNSServer is the host:port of the DNS server used for SRV discovery and
	// for resolving discovered targets; empty means the system resolver.
	DNSServer string
	// AdminAddr is the host:port of the admin HTTP server (/metrics,
	// /healthz, /status); empty means no admin server.
	AdminAddr string
	// AdminPprof serves /debug/pprof/ on the admin server.
	AdminPprof bool
	Listeners  []Listener
}

// Listener is one named listener and the etcd cluster behind it. Every
// inherited default has already been applied.
type Listener struct {
	Name       string
	ListenAddr string
	// Endpoints is the static endpoint list (host:port, scheme stripped).
	// Exactly one of Endpoints and DiscoverySRV is set.
	Endpoints         []string
	DiscoverySRV      string
	DiscoverySRVName  string
	InsecureDiscovery bool
	TrustedCAFile     string
	DNSRefresh        time.Duration
	RetryDelay        time.Duration
	DialTimeout       time.Duration
	// OnEndpointRemoved is RemovedKeep, RemovedDrain or RemovedClose.
	OnEndpointRemoved string
	DrainTimeout      time.Duration
	// MaxConnections is the most client connections open at once; past
	// it new connections are closed at once. 0 means no limit.
	MaxConnections int
	// IdleTimeout closes a connection that carried no byte either way for
	// this long; 0 means never.
	IdleTimeout time.Duration
	// KeepAlive is the TCP keepalive period of the client and the
	// upstream connections.
	KeepAlive time.Duration
}

// Listener returns the listener named name, and whether it exists.
func (s *Snapshot) Listener(name string) (Listener, bool) {
	for _, l := range s.Listeners {
		if l.Name == name {
			return l, true
		}
	}
	return Listener{}, false
}
