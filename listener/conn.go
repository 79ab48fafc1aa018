package listener

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// One way through a listener.
//
// Every proxied connection takes the same path, whatever carries it and
// however it came:
//
//	Go's Accept ──┐                     ┌▶ the loops alone (inLoops): a loop
//	              ├▶ admits ▶ track ▶ ──┤  connects the upstream and forwards
//	a loop's      │                     └▶ a worker (handle): TLS, Pool.Dial,
//	accept4 ──────┘                        then a loop's pair or a copy
//	Adopt ─────────────────▶ track ▶ ───▶ a loop's pair (AdoptFDs)
//
//	▶ connected (its endpoint tracks it) ▶ forwarding (pc.fwd) ▶ release
//
// track is the one way in and release the one way out: the counts, the
// descriptor budget, the drain's wait group, the endpoint's tracking and
// the debug lines are taken in one and given back in the other. Every
// close, whoever asks (shutdown, the idle timeout, an endpoint removed or
// unhealthy, an adopted orphan), is proxyConn.Close, through the
// forward.Forwarding that both engines implement. Work on every
// connection is written once, there: closing a connection only when
// nothing is in flight is proxyConn.CloseIfQuiet, Close checked first by
// the forwarding where the bytes are; draining one member's connections is closing
// those its Endpoint tracks (connected), each through proxyConn.Close.

// proxyConn is a client connection and, once started, its forwarding. A
// client the forwarder's loops accepted, or one adopted, has no net.Conn:
// a loop owns its descriptor, and peer is its address.
type proxyConn struct {
	client net.Conn // nil for a client the loops accepted, or one adopted
	peer   netip.AddrPort
	unix   bool      // the client came on a unix socket
	start  time.Time // when it was accepted; zero when adopted

	mu      sync.Mutex
	fwd     forward.Forwarding // once forwarding started
	ep      string             // the endpoint's address, once connected (handover.go)
	untrack func()             // ends the endpoint's tracking, once connected
	closed  bool
}

// remote is the client's address, for the logs.
func (c *proxyConn) remote() string {
	switch {
	case c.client != nil:
		return c.client.RemoteAddr().String()
	case c.peer.IsValid():
		return c.peer.String()
	}
	return "unix socket"
}

// Close closes both sides of the proxied connection: every close of one
// comes here (see above).
func (c *proxyConn) Close() error {
	c.mu.Lock()
	c.closed = true
	fwd := c.fwd
	c.mu.Unlock()
	if fwd != nil {
		return fwd.Close() // closes both connections
	}
	if c.client == nil {
		return nil // accepted by a loop: started closes its pair
	}
	return c.client.Close()
}

// GoAway asks the forwarding for a GOAWAY to the client
// (forward.Forwarding.GoAway); false before it started.
func (c *proxyConn) GoAway() bool {
	fwd := c.forwarding()
	return fwd != nil && fwd.GoAway()
}

// CloseIfQuiet is Close only when nothing is in flight
// (forward.Forwarding.CloseIfQuiet): the same way out, checked first. A
// connection whose forwarding has not started is not quiet.
func (c *proxyConn) CloseIfQuiet(window time.Duration) bool {
	fwd := c.forwarding()
	if fwd == nil || !fwd.CloseIfQuiet(window) {
		return false
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return true
}

// forwarding is c's forwarding; nil before it started.
func (c *proxyConn) forwarding() forward.Forwarding {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fwd
}

// Unanswered is when bytes sent to the member began to wait for an
// answer; zero when none wait.
func (c *proxyConn) Unanswered() time.Time {
	if fwd := c.forwarding(); fwd != nil {
		return fwd.Activity().Unanswered
	}
	return time.Time{}
}

// isClosed reports whether the connection was closed.
func (c *proxyConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// started gives c the pair its loop registered; a c closed meanwhile
// closes it.
func (c *proxyConn) started(p *forward.Pair) {
	c.mu.Lock()
	c.fwd = p
	closed := c.closed
	c.mu.Unlock()
	if closed {
		_ = p.Close()
	}
}

// track counts and tracks a proxied connection, accepted or adopted,
// until release: the one way in.
func (l *Listener) track(pc *proxyConn) {
	l.conns.Store(pc, struct{}{})
	l.fds.take()
	l.open.Add(1)
	l.wg.Add(1)
}

// connected records that pc's upstream is the endpoint at addr, ep, which
// tracks it from now on (nil: an adopted connection's endpoint the pool no
// longer has), and returns the meters its bytes count into.
func (l *Listener) connected(pc *proxyConn, addr string, ep *upstream.Endpoint) forward.Meters {
	m := forward.Meters{Listener: l.counters.bytes}
	untrack := func() {}
	if ep != nil {
		untrack = ep.Track(pc)
		m.Endpoint = ep.Bytes()
	}
	pc.mu.Lock()
	pc.ep, pc.untrack = addr, untrack
	pc.mu.Unlock()
	if !pc.start.IsZero() && debugEnabled(l.log) { // the fields cost allocations
		l.log.WithFields(logrus.Fields{"endpoint": addr, "client": pc.remote()}).Debug("connection opened")
	}
	return m
}

// release forgets an ended connection, whatever carried it, sent and
// received the bytes it moved: the one way out.
func (l *Listener) release(pc *proxyConn, sent, received int64) {
	pc.mu.Lock()
	untrack, ep := pc.untrack, pc.ep
	pc.mu.Unlock()
	if untrack != nil {
		untrack()
		if !pc.start.IsZero() && debugEnabled(l.log) {
			l.log.WithFields(logrus.Fields{
				"endpoint": ep, "client": pc.remote(),
				"bytes-sent": sent, "bytes-received": received, "duration": time.Since(pc.start).String(),
			}).Debug("connection closed")
		}
	}
	l.conns.Delete(pc)
	l.fds.give()
	l.open.Add(-1)
	l.wg.Done()
}

// debugEnabled reports whether log writes debug lines.
func debugEnabled(log logrus.FieldLogger) bool {
	switch l := log.(type) {
	case *logrus.Entry:
		return l.Logger.IsLevelEnabled(logrus.DebugLevel)
	case *logrus.Logger:
		return l.IsLevelEnabled(logrus.DebugLevel)
	}
	return true
}
