// Package config reads the gateway's configuration file, decodes it strictly,
// validates it and produces immutable snapshots. It also watches the file and
// emits a new snapshot for every valid change.
package config

import (
	"errors"
	"time"
)

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
	DefaultKeepAlive     = 15 * time.Second
	DefaultPolicy        = PolicyStickyRandom
	DefaultCheckType     = CheckEtcd
	DefaultCheckInterval = 5 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
	DefaultFall          = 2
	DefaultRise          = 2
	// DefaultLeaderlessMax is a few of etcd's default election timeout
	// (1s): an election is over by then, a member still without a leader
	// is cut off.
	DefaultLeaderlessMax = 3 * time.Second
	// DefaultLagMax is how many raft entries a returning member may be
	// behind the cluster's applied index and get clients (docs/design.md).
	DefaultLagMax = 1000
	// DefaultSuspectAfter is how long bytes sent to a member may wait for
	// an answer before its process is asked at once whether it answers
	// (docs/design.md: frozen members).
	DefaultSuspectAfter = 500 * time.Millisecond
	// DefaultSlowStart is how long a returning member takes to get its
	// full share of new connections (docs/design.md).
	DefaultSlowStart = 30 * time.Second
	// DefaultRebalance is on: clients pile up on the members that stayed
	// through a rolling restart and never come back by themselves
	// (docs/design.md).
	DefaultRebalance = true
	// DefaultOnUnhealthy is close: a client left on a frozen member hangs
	// until its own timeouts fire and loses its leases, while a closed
	// connection makes it reconnect, through the gateway, to a healthy
	// member at once. Only command-line flags keep etcd's behaviour (keep).
	DefaultOnUnhealthy = UnhealthyClose
	// DefaultOnEndpointRemoved keeps the connections of a removed
	// endpoint: a reload never closes a connection by itself.
	DefaultOnEndpointRemoved = RemovedKeep
	// DefaultSocketMode lets the socket's owner and group connect to a
	// unix socket listener, and nobody else: the group is how etcd
	// clients are let in.
	DefaultSocketMode = "0660"
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
	// DNSStaleMax is how long the last good addresses of a host name stay
	// in use while its lookups fail; 0 means for as long as they fail.
	DNSStaleMax time.Duration
	// AdminAddr is the host:port of the admin HTTP server (/metrics,
	// /healthz, /status); empty means no admin server.
	AdminAddr string
	// AdminPprof serves /debug/pprof/ on the admin server.
	AdminPprof bool
	// UpgradeSocket is the path of the unix socket through which a new
	// gateway process takes the listening sockets over from this one (see
	// gateway/handover); empty means the default (off, or
	// $RUNTIME_DIRECTORY/upgrade.sock under systemd). It is read at start.
	UpgradeSocket string
	// ControlSocket is the path of the unix socket through which the CLI
	// changes the running gateway (reload, drain; see gateway/control);
	// empty means the default (off, or $RUNTIME_DIRECTORY/control.sock
	// under systemd). ControlGroup is the group, besides root and the
	// gateway's user, that may use it. Both are read at start.
	ControlSocket string
	ControlGroup  string
	Listeners     []Listener
}

// Source names where the snapshot came from, for errors: its file, or
// "command line" for etcd's flags.
func (s *Snapshot) Source() string {
	if s.File == "" {
		return "command line"
	}
	return s.File
}

// ListenerError names the snapshot's file and the listener in err, and in
// each error of a joined err: a *KeyError keeps its key, any other error
// becomes one without a key. Packages that apply a snapshot report their
// failures with it, in the form config's own problems have.
func (s *Snapshot) ListenerError(listener string, err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, s.ListenerError(listener, e))
		}
		return errors.Join(out...)
	}
	ke := &KeyError{Err: err}
	errors.As(err, &ke)
	named := *ke
	named.File, named.Listener = s.Source(), listener
	return &named
}

// Listener is one named listener and the etcd cluster behind it. Every
// inherited default has already been applied.
type Listener struct {
	Name       string
	ListenAddr string
	// Endpoints is the static endpoint list (host:port, scheme stripped).
	// Exactly one of Endpoints and DiscoverySRV is set.
	Endpoints []string
	// TLSEndpoints are the entries of Endpoints that were given as
	// https://: members that serve TLS, whose health checks and member
	// sync speak TLS as for members found through _etcd-client-ssl. nil
	// when there is none.
	TLSEndpoints      []string
	DiscoverySRV      string
	DiscoverySRVName  string
	InsecureDiscovery bool
	// TrustedCAFile verifies the TLS members when the listener has no
	// upstream-tls block: those discovered through _etcd-client-ssl, and
	// those given as https://.
	TrustedCAFile string
	// SocketMode, SocketOwner and SocketGroup are the mode (an octal
	// string), owner and group (a name or a number; "" leaves the
	// gateway's) of the file of a unix:// listener. See SocketPerms.
	SocketMode  string
	SocketOwner string
	SocketGroup string
	// AllowedUIDs and AllowedGIDs are who may connect to a unix socket
	// listener, by the connecting process's user or group (names or
	// numbers, as written); nil lets anyone the socket's mode lets in.
	// See PeerIDs.
	AllowedUIDs []string
	AllowedGIDs []string
	DNSRefresh  time.Duration
	RetryDelay  time.Duration
	DialTimeout time.Duration
	// OnEndpointRemoved is RemovedKeep, RemovedDrain or RemovedClose.
	OnEndpointRemoved OnRemoved
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
	// Policy is PolicyStickyRandom, PolicyRoundRobin or
	// PolicyLeastConnections.
	Policy Policy
	// SlowStart is how long a member that returns after being down takes
	// to get its full share of new connections; 0 means at once.
	SlowStart time.Duration
	// Rebalance moves connections (a GOAWAY for plaintext HTTP/2, else a
	// close while quiet) from the busiest members toward the mean after a
	// member returns or joins.
	Rebalance bool
	// MaxConnectionAge moves every connection, as Rebalance does, once it
	// is this old (with jitter); 0 means never.
	MaxConnectionAge time.Duration
	HealthCheck      HealthCheck
	// OnUnhealthy is UnhealthyKeep or UnhealthyClose.
	OnUnhealthy OnUnhealthy
	// MemberSync is how often the cluster is asked for its members; 0
	// means off.
	MemberSync time.Duration
	// UpstreamTLS is how the gateway talks TLS to the members: for client
	// traffic (unless Passthrough), health checks and member sync.
	UpstreamTLS UpstreamTLS
	// TLS is the TLS the listener serves to its clients; zero when it
	// serves plain TCP.
	TLS ListenTLS
	// FilesDigest is the digest of the content of the files the listener
	// references (Files), set by Load and by the Watcher (see
	// WithFileDigests), so that a renewed certificate makes the listener
	// differ; empty in a snapshot from Parse or FromFlags.
	FilesDigest string
}

// HealthCheck is a listener's health-check block, defaults and
// inheritance applied.
type HealthCheck struct {
	// Type is CheckNone, CheckTCP or CheckEtcd.
	Type              CheckType
	Interval, Timeout time.Duration
	// Fall and Rise are the failed and successful checks in a row that
	// mark an endpoint down and up.
	Fall, Rise int
	// LeaderlessMax is how long a member may be without a leader before
	// it is marked down at once and its connections closed.
	LeaderlessMax time.Duration
	// LagMax is how many raft entries a returning member's applied index
	// may be behind the cluster's for it to get clients; 0 doesn't wait.
	LagMax int
	// SuspectAfter is how long bytes a client sent to a member may wait
	// for an answer before the member's process is asked at once whether
	// it answers at all, with that as the timeout; 0 turns this off.
	SuspectAfter time.Duration
}

// UpstreamTLS is a listener's upstream-tls block: the files the gateway
// uses to talk to the members over TLS. Paths are as written; they are
// read when the listener is applied.
type UpstreamTLS struct {
	// Enabled is true when the listener has an upstream-tls block, even an
	// empty one (TLS with the system roots).
	Enabled    bool
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
	// Passthrough forwards the clients' bytes untouched (clients speak
	// TLS to the members end to end); the block then serves only the
	// gateway's own connections (health checks, member sync). When false
	// the gateway originates TLS to the members for client traffic.
	Passthrough bool
}

// Originates reports whether the gateway speaks TLS to the members for
// client traffic: an upstream-tls block without passthrough.
func (t UpstreamTLS) Originates() bool { return t.Enabled && !t.Passthrough }

// ListenTLS is a listener's tls block: the gateway terminates TLS from
// its clients. Paths are as written; they are read when the listener is
// applied.
type ListenTLS struct {
	// CertFile and KeyFile are the listener's certificate and key; both
	// are set when the block is present.
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, makes the listener require a client
	// certificate signed by one of its CAs.
	ClientCAFile string
}

// Enabled reports whether the listener terminates TLS.
func (t ListenTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" }

// Listener returns the listener named name, and whether it exists.
func (s *Snapshot) Listener(name string) (Listener, bool) {
	for _, l := range s.Listeners {
		if l.Name == name {
			return l, true
		}
	}
	return Listener{}, false
}
