package listener

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// Serving in the forwarder's loops.
//
// A listener without a tls block, on Linux, accepts in the forwarder's
// event loops (forward.Serve): no net.Listener.Accept, no goroutine per
// connection. A loop asks loopAcceptor about each connection, on its own
// thread: the descriptor reserve (Room), the allow-list and max-connections
// (admits), then tracking, as Serve's accept loop does; then it connects the
// upstream itself, through the pool's DialPlan (loopdial.go): IP
// endpoints and host names alike (static names, SRV targets, members found
// by member sync), at the names' cached addresses; a pool with no endpoint
// yet (waiting for DNS) too, whose clients are closed with the reason. A
// client the loop can't serve alone (the listener was given a tls block
// since, or the pool originates TLS since) is handed to a handler
// goroutine as a net.Conn, as Serve's would be. A listener that starts
// with a tls block, or a pool that originates TLS, is served by Serve's
// accept loop. The Gate's Pause and Resume pause the loops' accepting;
// Close stops it.

// loopAcceptor is a listener's forward.Acceptor.
type loopAcceptor struct {
	l          *Listener
	unix       bool     // the socket is a unix socket: no TCP options
	w          *workers // for the clients handed to goroutines
	paused     atomic.Bool
	lastErrLog atomic.Int64 // unix ns
	suppressed atomic.Int64
}

// Room reports whether the descriptor reserve lets a client in.
func (a *loopAcceptor) Room() bool { return a.l.fds.roomOrPause(&a.paused, a.l.log) }

// Error logs a failed accept, at most once a second, and has the
// descriptors counted again: the last count is wrong.
func (a *loopAcceptor) Error(err error) {
	a.l.fds.stale()
	now := time.Now().UnixNano()
	last := a.lastErrLog.Load()
	if now-last < int64(time.Second) || !a.lastErrLog.CompareAndSwap(last, now) {
		a.suppressed.Add(1)
		return
	}
	a.l.log.WithError(err).WithField("suppressed", a.suppressed.Swap(0)).Error("accept failed; accepting paused for a while")
}

// Accept admits client socket fd, tracks it, and returns how its loop
// connects its upstream.
func (a *loopAcceptor) Accept(fd int, peer netip.AddrPort) (forward.Client, bool) {
	l := a.l
	lim, ok := l.admits(fdSocket(fd), a.unix)
	if !ok {
		return forward.Client{}, false
	}
	if !a.unix && !l.keepAliveInherited.Load() && lim.KeepAlive > 0 {
		_ = setSocketKeepAlive(fdSocket(fd), lim.KeepAlive)
	}
	if l.serverTLS.Load() != nil || !l.pool.Nonblocking() {
		a.handOff(fd)
		return forward.Client{}, true
	}
	pc := &proxyConn{peer: peer, unix: a.unix}
	l.track(pc)
	plan, err := l.pool.Plan()
	if err != nil {
		l.noUpstream(pc, err)
		l.release(pc)
		return forward.Client{}, false
	}
	u := &loopUpstream{l: l, pc: pc, plan: plan, start: time.Now()}
	o := forward.ConnectOptions{Timeout: plan.Timeout(), KeepAlive: lim.KeepAlive}
	return forward.Client{Upstream: u, Options: o, Done: u.done, Started: pc.started}, true
}

// handOff serves client socket fd, which it takes, as Serve's accept loop
// would: a net.Conn for a handler goroutine.
func (a *loopAcceptor) handOff(fd int) {
	f := os.NewFile(uintptr(fd), "client")
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		a.l.log.WithError(err).Warn("can't serve a client; closing it")
		return
	}
	pc := &proxyConn{client: c, unix: a.unix}
	a.l.track(pc)
	a.w.run(pc)
}

// fdSocket is a socket descriptor the caller holds, as a controller.
type fdSocket int

// Control runs fn with the descriptor.
func (s fdSocket) Control(fn func(fd uintptr)) error {
	fn(uintptr(s))
	return nil
}

// serveInLoops serves the listener in the forwarder's loops until Close,
// and reports true; false, having done nothing, when it can't or should
// not, and Serve's accept loop serves: a listener with a tls block, or a
// pool that originates TLS (see Pool.Nonblocking), whose every client
// would be handed off.
func (l *Listener) serveInLoops(w *workers) bool {
	if l.fwd == nil || !forward.LoopsConnect || l.serverTLS.Load() != nil || !l.pool.Nonblocking() {
		return false
	}
	fd, err := listenFD(rawConn(l.ln))
	if err != nil {
		l.log.WithError(err).Debug("accepting through Go's net package")
		return false
	}
	a := &loopAcceptor{l: l, unix: l.ln.Addr().Network() == "unix", w: w}
	if !l.startService(fd, a) {
		return false
	}
	if g := l.Gate(); g != nil {
		g.dropGoListener()
	}
	<-l.stopServing
	return true
}

// startService starts the loops' accepting on fd, paused when the Gate
// is, and reports whether it did; on failure fd is closed.
func (l *Listener) startService(fd int, a *loopAcceptor) bool {
	l.serveMu.Lock()
	defer l.serveMu.Unlock()
	if l.closed.Load() {
		closeFD(fd)
		return true // Close came first: nothing to serve
	}
	var err error
	start := func(paused bool) func(bool) {
		if l.svc, err = l.fwd.Serve(fd, a, paused); err != nil {
			return nil
		}
		svc := l.svc
		return func(paused bool) {
			if paused {
				svc.Pause()
			} else {
				svc.Resume()
			}
		}
	}
	if g := l.Gate(); g != nil {
		g.serveWith(start)
	} else {
		start(false)
	}
	if err != nil {
		l.log.WithError(err).Warn("accepting through Go's net package")
		return false
	}
	return true
}

// stopService stops the loops' accepting, if they accept, for Close.
func (l *Listener) stopService() {
	l.serveMu.Lock()
	defer l.serveMu.Unlock()
	if l.svc != nil {
		l.svc.Stop()
	}
	l.stopOnce.Do(func() { close(l.stopServing) })
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
