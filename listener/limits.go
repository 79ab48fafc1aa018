package listener

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// Limits are a listener's connection limits. SetLimits changes them at
// run time.
type Limits struct {
	// MaxConns is the most client connections open at once; past it a new
	// connection is closed as soon as it is accepted. 0 means no limit.
	MaxConns int64
	// IdleTimeout closes a connection that carried no byte either way for
	// this long. 0 means never.
	IdleTimeout time.Duration
	// KeepAlive is the TCP keepalive period set on every new client and
	// upstream connection. 0 leaves the sockets as they are.
	KeepAlive time.Duration
	// Peers, when set, lets in only the clients it allows, by their
	// credentials; nil lets anyone in. See peer.go.
	Peers *Peers
}

// Bounds of how often open connections are checked for idleness: a
// quarter of the idle timeout, within these.
const (
	minReapInterval = 10 * time.Millisecond
	maxReapInterval = 30 * time.Second
)

// errIdleUnsupported is returned by idleFor where the kernel can't tell
// how long a connection has been idle.
var errIdleUnsupported = errors.New("idle-timeout is not supported on this system")

// counters are a listener's counts beyond open and accepted connections.
// They are only ever added to.
type counters struct {
	rejected    atomic.Uint64
	idleClosed  atomic.Uint64
	noUpstream  atomic.Uint64
	tlsFailures atomic.Uint64
	// denied counts the clients an allow-list closed; lastDeniedLog is
	// when one was last logged (unix ns).
	denied        atomic.Uint64
	lastDeniedLog atomic.Int64
	// bytes counts what the listener's connections forward, as it moves.
	bytes *upstream.ByteCounter
	// lastRejectLog is when a rejection was last logged (unix ns), so that
	// a flood of rejections logs about once a second.
	lastRejectLog atomic.Int64
}

// Counters are a listener's cumulative counts.
type Counters struct {
	// Accepted counts the client connections accepted and forwarded (or
	// tried); rejected ones are not included.
	Accepted uint64
	// Rejected counts the connections closed at once because the
	// listener had MaxConns open.
	Rejected uint64
	// IdleClosed counts the connections closed by the idle timeout.
	IdleClosed uint64
	// NoUpstream counts the clients closed because no endpoint could be
	// dialled.
	NoUpstream uint64
	// BytesToUpstream and BytesToClient count the bytes forwarded each way
	// so far, by open and closed connections.
	BytesToUpstream, BytesToClient uint64
	// TLSHandshakeFailures counts the clients closed because their TLS
	// handshake failed, on a listener with a tls block.
	TLSHandshakeFailures uint64
	// Denied counts the clients closed at once because the listener's
	// allow-list (allowed-uids, allowed-gids) does not let them in.
	Denied uint64
}

// Add returns the sum of c and o.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		Accepted:        c.Accepted + o.Accepted,
		Rejected:        c.Rejected + o.Rejected,
		IdleClosed:      c.IdleClosed + o.IdleClosed,
		NoUpstream:      c.NoUpstream + o.NoUpstream,
		BytesToUpstream: c.BytesToUpstream + o.BytesToUpstream,
		BytesToClient:   c.BytesToClient + o.BytesToClient,

		TLSHandshakeFailures: c.TLSHandshakeFailures + o.TLSHandshakeFailures,
		Denied:               c.Denied + o.Denied,
	}
}

// Counters returns the listener's counts so far.
func (l *Listener) Counters() Counters {
	up, down := l.counters.bytes.Load()
	return Counters{
		Accepted:        l.total.Load(),
		Rejected:        l.counters.rejected.Load(),
		IdleClosed:      l.counters.idleClosed.Load(),
		NoUpstream:      l.counters.noUpstream.Load(),
		BytesToUpstream: up,
		BytesToClient:   down,

		TLSHandshakeFailures: l.counters.tlsFailures.Load(),
		Denied:               l.counters.denied.Load(),
	}
}

// Limits returns the listener's current limits.
func (l *Listener) Limits() Limits { return *l.limits.Load() }

// SetLimits replaces the listener's limits. MaxConns and IdleTimeout apply
// at once, to the connections already open too; KeepAlive applies to new
// connections.
func (l *Listener) SetLimits(lim Limits) {
	// The listening socket first: a connection accepted from now on
	// inherits the new keepalive, whichever limits admit reads.
	l.keepAliveInherited.Store(setListenerKeepAlive(rawConn(l.ln), lim.KeepAlive))
	l.limits.Store(&lim)
	select {
	case l.limitsChanged <- struct{}{}:
	default:
	}
}

// admit decides on a connection accepted by Go's net package: a client
// the allow-list does not let in (see admitPeer), or past MaxConns, is
// closed; otherwise its keepalive is set, unless it inherited it from the
// listening socket. It reports whether the connection is to be served.
func (l *Listener) admit(c net.Conn) bool {
	_, unixClient := c.(*net.UnixConn)
	lim, ok := l.admits(rawConn(c), unixClient)
	if !ok {
		_ = c.Close()
		return false
	}
	if !l.keepAliveInherited.Load() {
		setKeepAlive(c, lim.KeepAlive)
	}
	return true
}

// admits decides on client socket sock just accepted, with the current
// limits: one the allow-list does not let in is refused (see admitPeer);
// past MaxConns one is refused, counted and logged. The caller closes a
// refused client; one admitted counts as accepted.
func (l *Listener) admits(sock controller, unixClient bool) (*Limits, bool) {
	lim := l.limits.Load()
	if !l.admitPeer(sock, unixClient, lim.Peers) {
		return lim, false
	}
	if lim.MaxConns > 0 && l.open.Load() >= lim.MaxConns {
		n := l.counters.rejected.Add(1)
		l.logRejection(lim.MaxConns, n)
		return lim, false
	}
	l.total.Add(1)
	return lim, true
}

// logRejection logs a max-connections rejection, at most about once a
// second.
func (l *Listener) logRejection(maxConns int64, total uint64) {
	now := time.Now().UnixNano()
	last := l.counters.lastRejectLog.Load()
	if now-last < int64(time.Second) || !l.counters.lastRejectLog.CompareAndSwap(last, now) {
		return
	}
	l.log.WithFields(logrus.Fields{"max-connections": maxConns, "rejected-total": total}).
		Warn("max-connections reached: new connections are closed at once")
}

// setKeepAlive sets the TCP keepalive period of c, when c is a TCP
// connection and d is positive.
func setKeepAlive(c net.Conn, d time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok || d <= 0 {
		return
	}
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: d, Interval: d, Count: forward.KeepAliveProbes})
}

// reapIdle closes idle connections, every quarter of the idle timeout,
// until the listener's context ends. It reads how long a connection has
// been idle from the kernel, so the forwarding path pays nothing for it.
func (l *Listener) reapIdle() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	warned := false
	for {
		lim := l.limits.Load()
		var tick <-chan time.Time
		if lim.IdleTimeout > 0 {
			timer.Reset(min(max(lim.IdleTimeout/4, minReapInterval), maxReapInterval))
			tick = timer.C
		}
		select {
		case <-l.ctx.Done():
			return
		case <-l.limitsChanged:
			timer.Stop()
		case <-tick:
			if err := l.closeIdle(lim.IdleTimeout); err != nil && !warned {
				warned = true
				l.log.WithError(err).Warn("idle-timeout ignored")
			}
		}
	}
}

// closeIdle closes every connection idle for timeout or longer.
func (l *Listener) closeIdle(timeout time.Duration) error {
	var unsupported error
	l.conns.Range(func(k, _ any) bool {
		pc := k.(*proxyConn)
		idle, err := idleFor(pc.idleConn())
		if errors.Is(err, errIdleUnsupported) {
			unsupported = err
			return false
		}
		if err != nil || idle < timeout {
			return true // an error: the connection is closing anyway
		}
		if pc.closeIfOpen() {
			l.counters.idleClosed.Add(1)
			l.log.WithFields(logrus.Fields{"client": pc.remote(), "idle": idle.String()}).
				Debug("idle connection closed")
		}
		return true
	})
	return unsupported
}

// controller runs a function with a socket's descriptor: a
// syscall.RawConn, or one side of a forwarded pair.
type controller interface {
	Control(fn func(fd uintptr)) error
}

// forwardedSide is side i of a forwarded connection (0 the client, 1 the
// upstream).
type forwardedSide struct {
	f forward.Forwarding
	i int
}

// Control runs fn with the side's descriptor, unless the forwarding ended.
func (s forwardedSide) Control(fn func(fd uintptr)) error { return s.f.Control(s.i, fn) }

// idleConn is the socket whose idle time stands for the pair's: the
// client's, or, for a unix socket client (TCP_INFO is TCP's), the
// upstream's, which carries the same bytes.
func (c *proxyConn) idleConn() controller {
	if c.unix {
		return c.socket(1)
	}
	return c.socket(0)
}

// socket is side i of the connection (0 the client, 1 the upstream): of
// its forwarding once started, else the client's Go connection; nil when
// there is none (not dialled yet: idleFor skips it).
func (c *proxyConn) socket(i int) controller {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.fwd != nil:
		return forwardedSide{c.fwd, i}
	case i == 0:
		return rawConn(c.client)
	}
	return nil
}

// rawConn returns c's RawConn (c a net.Conn or a net.Listener), nil when
// it has none.
func rawConn(c any) controller {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// closeIfOpen closes the connection unless it is closed already, and
// reports whether it did.
func (c *proxyConn) closeIfOpen() bool {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return false
	}
	_ = c.Close()
	return true
}
