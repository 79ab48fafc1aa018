package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/sirupsen/logrus"
)

// closeSpread is the window over which connections closed by policy are
// spread, so that their clients don't all reconnect at once. It is part of
// the time a frozen member holds its clients (docs/design.md), so it is
// kept short.
const closeSpread = 250 * time.Millisecond

// ErrNoEndpoint is returned by Dial when no endpoint could be reached.
var ErrNoEndpoint = errors.New("no endpoint reachable")

// DialFunc dials one endpoint address.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// LookupFunc returns the cached addresses of a host name, in the order to
// try them, without waiting for DNS.
type LookupFunc func(name string) ([]netip.Addr, error)

// Settings are the pool settings a reload may change. They apply to new
// connections and to later probes and checks.
type Settings struct {
	DialTimeout time.Duration
	RetryDelay  time.Duration
	// OnEndpointRemoved is config.RemovedKeep, config.RemovedDrain or config.RemovedClose.
	OnEndpointRemoved config.OnRemoved
	DrainTimeout      time.Duration
	// Policy names the pick policy (config.PolicyStickyRandom when empty). It is
	// ignored when Options.Policy is set.
	Policy config.Policy
	// SlowStart is how long an endpoint that returns after being down
	// takes to get its full share of new connections; 0 gives it at once.
	SlowStart time.Duration
	// Rebalance moves connections (mover.go: a GOAWAY, else a close
	// only while quiet), from the
	// busiest endpoints toward the mean when a member returns or joins or
	// the spread passes a bound (rebalance.go); false leaves them where
	// they are, as etcd's gateway does.
	Rebalance bool
	// MaxConnectionAge, when above 0, moves every connection, as
	// Rebalance does, once it is this old (±10 %, per connection), whatever
	// the balance: for operators who want connections spread
	// periodically.
	MaxConnectionAge time.Duration
	// HealthCheck configures active health checks; the zero value runs
	// none.
	HealthCheck HealthCheck
	// OnUnhealthy is config.UnhealthyClose (when empty) or config.UnhealthyKeep. Close is
	// the default because a client left on a frozen member hangs and loses
	// its leases, where a closed one reconnects to a healthy member.
	OnUnhealthy config.OnUnhealthy
	// MemberSync is how often the cluster is asked for its members; 0
	// turns member sync off.
	MemberSync time.Duration
	// TLS, when set, is used to talk to every endpoint (etcd check and
	// member sync): the listener's upstream-tls block.
	TLS *tls.Config
	// DiscoveredTLS is used for the TLS members (discovered through
	// _etcd-client-ssl, or in TLSEndpoints) when TLS is nil; nil means the
	// system roots.
	DiscoveredTLS *tls.Config
	// TLSEndpoints are the static endpoints given as https://: their
	// health checks and member sync speak TLS, as for discovered TLS
	// members.
	TLSEndpoints []string
	// Originate, when set, makes Dial speak TLS to the endpoint for the
	// client: the handshake is part of the dial, within DialTimeout, and
	// a handshake that fails is a failed dial. An empty ServerName is
	// the endpoint's host.
	Originate *tls.Config
}

func (s Settings) withDefaults() Settings {
	if s.DialTimeout <= 0 {
		s.DialTimeout = 3 * time.Second
	}
	if s.RetryDelay <= 0 {
		s.RetryDelay = time.Minute
	}
	if s.Policy == "" {
		s.Policy = config.PolicyStickyRandom
	}
	if s.OnUnhealthy == "" {
		s.OnUnhealthy = config.UnhealthyClose
	}
	if s.MemberSync < 0 {
		s.MemberSync = 0
	}
	if s.MaxConnectionAge < 0 {
		s.MaxConnectionAge = 0
	}
	s.HealthCheck = s.HealthCheck.withDefaults()
	return s
}

// Options configure a new Pool.
type Options struct {
	Settings
	// Policy, when set, picks among candidates for the pool's whole life,
	// whatever Settings.Policy says.
	Policy Policy
	// Dial dials an endpoint; nil means a net.Dialer.
	Dial DialFunc
	// Lookup, when set, gives the addresses of a host name as cached,
	// without waiting (resolver.Hosts.Addrs): a host-name endpoint is then
	// dialled address by address, through Dial as through a DialPlan's
	// NextAddr, and the forwarder's loops can connect it. Its error, when
	// the name has no address to use, should wrap resolver.ErrUnresolved.
	// Nil dials host names by name through Dial.
	Lookup LookupFunc
	// Log receives the pool's log lines; it should carry the listener name.
	Log logrus.FieldLogger
	// Checkers, when set, runs the pool's health checks, shared with the
	// other pools of the registry that check the same members the same
	// way; nil gives the pool a registry of its own. Its dial function
	// should be Dial.
	Checkers *Checkers
}
