// Package upstream keeps one pool of etcd endpoints per cluster: it picks the
// endpoint for each new connection, fails over when a dial fails, re-probes
// failed endpoints, and takes endpoint-set updates in place so that
// endpoints which stay keep their state. Beside the pool, health checkers
// (shared by the pools of a registry, so that a member is checked once
// however many listeners point at it) and member sync feed it through
// narrow interfaces.
package upstream

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// Endpoint is one member address in a pool with its live state. Its methods
// are safe for concurrent use.
//
// Two states decide whether it takes new connections, and both must say
// up: the passive state (Active), which a failed dial turns off, and the
// health-check verdict (Healthy), which stays true when no check runs.
type Endpoint struct {
	addr string
	// ip is addr when it is an IP address and port, for a caller that
	// connects by itself (DialPlan.NextAddr); invalid for a host name,
	// which name and port are then, for the pool's Lookup.
	ip   netip.AddrPort
	name string
	port uint16
	// record holds the SRV data, which an update may change in place.
	record atomic.Pointer[resolver.Endpoint]

	active  atomic.Bool
	healthy atomic.Bool
	removed atomic.Bool
	// drained is set by Pool.Drain and MarkDrained: no new connections,
	// not even as a last resort, until Undrain or the address's removal.
	drained atomic.Bool
	// removals counts the endpoint's removals, so that a drain timer of a
	// removal can tell that the endpoint was revived (and perhaps removed
	// again) since.
	removals atomic.Uint64
	probing  atomic.Bool

	// checkErr is why the last health check failed; nil after a success.
	checkErr atomic.Pointer[string]
	// check is the shared checker whose verdicts the endpoint hears; nil
	// when none runs. Written under the pool's updateMu; a failed dial
	// reads it.
	check atomic.Pointer[checker]
	// readiness is what etcd's own state says of a healthy member
	// (readiness.go).
	readiness

	open       atomic.Int64
	dialing    atomic.Int64
	total      atomic.Uint64
	dialErrors atomic.Uint64
	// moves counts the connections the mover moved, by reason
	// (mover.go).
	moves moveCounters
	// bytes counts what connections to the endpoint forward, as it moves.
	bytes *ByteCounter

	timings Timings // dial and health-check durations (latency.go)
	// suspicions counts the checks on suspicion and the frozen verdicts.
	suspicions suspicionCounts

	// conns holds a *tracked for every open connection, so that a removed
	// or unhealthy endpoint's connections can be closed.
	conns sync.Map
}

func newEndpoint(re resolver.Endpoint) *Endpoint {
	ep := &Endpoint{addr: re.Addr, bytes: NewByteCounter()}
	ep.ip, _ = netip.ParseAddrPort(re.Addr) // invalid for a host name
	if !ep.ip.IsValid() {
		ep.name, ep.port = splitName(re.Addr)
	}
	ep.record.Store(&re)
	ep.active.Store(true)
	ep.healthy.Store(true)
	return ep
}

// revive puts a removed endpoint back into service when its address
// returns to the pool, as a new endpoint would start (active, healthy, no
// check results), but with its open connections and counters. The pool's
// updateMu is held, and a removed endpoint hears no checker.
func (ep *Endpoint) revive(re resolver.Endpoint) {
	ep.record.Store(&re)
	ep.checkErr.Store(nil)
	ep.forgetReadiness()
	ep.healthy.Store(true)
	ep.active.Store(true)
	ep.removed.Store(false)
	ep.drained.Store(false)
}

// splitName splits a host-name endpoint address into its name and port;
// an address it can't split gives a port of 0, which no dial reaches.
func splitName(addr string) (string, uint16) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.ParseUint(port, 10, 16)
	return host, uint16(n)
}

// Addr is the endpoint's host:port.
func (ep *Endpoint) Addr() string { return ep.addr }

// Record is the endpoint as its source last described it.
func (ep *Endpoint) Record() resolver.Endpoint { return *ep.record.Load() }

func (ep *Endpoint) priority() uint16 { return ep.record.Load().Priority }

func (ep *Endpoint) weight() uint16 { return ep.record.Load().Weight }

// Healthy reports the health checks' verdict; it is true when the pool runs
// no health check.
func (ep *Endpoint) Healthy() bool { return ep.healthy.Load() }

// Up reports whether the endpoint takes new connections: it is in its pool,
// not drained, active and healthy, and nothing of etcd's own state keeps
// it out (a learner, catching up, an alarm of its own, or not knowing yet
// whether it is a learner).
func (ep *Endpoint) Up() bool {
	return ep.active.Load() && ep.healthy.Load() && !ep.removed.Load() && !ep.drained.Load() && ep.ready()
}

// EndpointStats is a snapshot of an endpoint's state and counters, for the
// status and the metrics: one call rather than a getter per field.
type EndpointStats struct {
	// Active is the passive state: false from a failed dial until a
	// successful dial, probe or run of health checks brings it back.
	// Healthy is the health checks' verdict (see Endpoint.Healthy);
	// Removed, whether a later update took the endpoint out of its pool;
	// Drained, whether an operator drained it (Pool.Drain).
	Active, Healthy, Removed, Drained bool
	// CheckError is why the last health check failed, or "" when it
	// passed or none has run.
	CheckError string
	// OpenConns is the number of connections open to the endpoint now;
	// TotalConns those made so far, DialErrors the failed dials.
	OpenConns              int64
	TotalConns, DialErrors uint64
	// BytesToUpstream and BytesToClient count the bytes forwarded each
	// way so far, by open and closed connections.
	BytesToUpstream, BytesToClient uint64
	// SuspicionChecks counts the checks run at once because a client's
	// bytes waited suspect-after for an answer; Frozen the checks that
	// found the member frozen (no answer to the check either), each of
	// which marked it down.
	SuspicionChecks, Frozen uint64
	// Moves counts the connections the gateway moved off the endpoint
	// (a GOAWAY, or a close while quiet), by reason.
	Moves MoveCounts
	// Readiness is what etcd's own state says of the member.
	Readiness
}

// Up reports whether the endpoint took new connections when the snapshot
// was taken, as Endpoint.Up.
func (s EndpointStats) Up() bool {
	return s.Active && s.Healthy && !s.Removed && !s.Drained && !s.Learner && !s.CatchingUp && !s.LocalAlarm && !s.AwaitingCheck
}

// Stats returns a snapshot of the endpoint's state and counters.
func (ep *Endpoint) Stats() EndpointStats {
	up, down := ep.bytes.Load()
	return EndpointStats{
		Active: ep.active.Load(), Healthy: ep.healthy.Load(), Removed: ep.removed.Load(), Drained: ep.drained.Load(),
		CheckError: ep.LastCheckError(), Moves: ep.moves.load(),
		OpenConns: ep.open.Load(), TotalConns: ep.total.Load(), DialErrors: ep.dialErrors.Load(),
		BytesToUpstream: up, BytesToClient: down,
		SuspicionChecks: ep.suspicions.checks.Load(), Frozen: ep.suspicions.frozen.Load(),
		Readiness: ep.readinessNow(time.Now()),
	}
}

// LastCheckError is Stats().CheckError, for a caller that wants only it
// (the pool's own logs, tests); status pages read Stats.
func (ep *Endpoint) LastCheckError() string {
	if e := ep.checkErr.Load(); e != nil {
		return *e
	}
	return ""
}

// OpenConns is Stats().OpenConns.
func (ep *Endpoint) OpenConns() int64 { return ep.open.Load() }

// Bytes is the counter that the forwarding of the endpoint's connections
// counts into as bytes move, so that a connection open for days shows its
// traffic at once.
func (ep *Endpoint) Bytes() *ByteCounter { return ep.bytes }

// load is the endpoint's number of connections, open or being dialled, as
// least-connections counts it.
func (ep *Endpoint) load() int64 { return ep.open.Load() + ep.dialing.Load() }

// Conn is a proxied connection an endpoint tracks. The endpoint closes it
// when its member is removed or goes unhealthy, and reads what its last
// bytes say: a connection is moved only when nothing is in flight, and an
// answer the member owes for long is a sign that it is frozen.
type Conn interface {
	Close() error
	// GoAway tells the client, if the connection speaks plaintext HTTP/2,
	// to send its new requests on a new connection and to close this one
	// once its streams end; it reports whether it could.
	GoAway() bool
	// CloseIfQuiet closes the connection only when nothing is in flight:
	// the member spoke last, neither way moved bytes for window, and no
	// byte waits on the way; it reports whether it closed.
	CloseIfQuiet(window time.Duration) bool
	// Unanswered is when bytes sent to the member began to wait for an
	// answer; zero when none wait.
	Unanswered() time.Time
}

// tracked is a connection an endpoint tracks.
type tracked struct {
	c Conn
	// since is when the endpoint began to track it: connected, or adopted
	// from an old process, whose start this one can't know.
	since time.Time
	// ageJitter scales max-connection-age for this connection, so that
	// connections opened together don't reach it together.
	ageJitter float64
	// moving is set by the one move that closes it, so that two reasons
	// never both close and count it.
	moving atomic.Bool
	// away is when a move sent the connection a GOAWAY (UnixNano; 0 for
	// none): its client closes it, or a later check does (lingering).
	away atomic.Int64
}

// Track records c as a connection open to the endpoint until the returned
// function is called. A tracked connection is closed when the endpoint is
// removed with the drain or close policy, or goes unhealthy with
// on-unhealthy close; the mover closes it when quiet.
func (ep *Endpoint) Track(c Conn) (untrack func()) {
	t := &tracked{c: c, since: time.Now(), ageJitter: 1 - maxAgeJitter + 2*maxAgeJitter*rand.Float64()}
	ep.conns.Store(t, struct{}{})
	ep.open.Add(1)
	ep.total.Add(1)
	return func() {
		if _, loaded := ep.conns.LoadAndDelete(t); loaded {
			ep.open.Add(-1)
		}
	}
}

// closeConns closes every tracked connection, spread over window with
// jitter so that their clients don't all reconnect at the same moment.
func (ep *Endpoint) closeConns(window time.Duration) {
	ep.conns.Range(func(k, _ any) bool {
		t := k.(*tracked)
		if window <= 0 {
			_ = t.c.Close()
			return true
		}
		time.AfterFunc(rand.N(window), func() { _ = t.c.Close() })
		return true
	})
}
