package listener

import (
	"errors"
	"net"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// What carries a connection.
//
// Two engines: the forwarder's loops alone, which accept (or take a client
// from Go's Accept), connect the upstream and forward on raw descriptors,
// with no goroutine and no net.Conn; or a worker goroutine (handle), for
// what needs one: the TLS handshake with the client, Pool.Dial when the
// pool originates TLS, and systems without the loops. A worker hands the
// connection on to the forwarder, which forwards two sockets in a loop
// and copies anything else (TLS) with two goroutines. inLoops is the one
// place that decides.

// errClosedWhileDialling reports a client closed before its upstream was
// connected.
var errClosedWhileDialling = errors.New("connection closed while dialling")

// inLoops reports whether the forwarder's loops can serve a client the
// listener takes now alone, from accept to close: the forwarder connects
// in its loops (Linux), the listener serves no TLS, and the pool
// originates none (Pool.Nonblocking). Serve asks it for the listener
// (whether the loops accept), and each accept for its client.
func (l *Listener) inLoops() bool {
	return forward.LoopsConnect && l.serverTLS.Load() == nil && l.pool.Nonblocking()
}

// serveAccepted serves pc, a client Go's Accept took, admitted and
// tracked: handed to a loop, or to a worker.
func (l *Listener) serveAccepted(pc *proxyConn, w *workers) {
	if sock, ok := pc.client.(forward.Socket); ok && l.inLoops() {
		l.connectInLoop(pc, sock)
		return
	}
	w.run(pc)
}

// handle serves pc in a worker: the TLS handshake when the listener serves
// TLS, Pool.Dial, then the forwarder.
func (l *Listener) handle(pc *proxyConn) {
	client, ok := l.serveTLS(pc) // pc.client itself when the listener has no tls block
	if !ok {
		l.release(pc, 0, 0)
		return
	}
	up, ep, err := l.pool.Dial(l.ctx)
	if err != nil {
		l.noUpstream(pc, err)
		_ = pc.client.Close()
		l.release(pc, 0, 0)
		return
	}
	setKeepAlive(up, l.limits.Load().KeepAlive)
	m := l.connected(pc, ep.Addr(), ep)
	// The forwarder holds no goroutine for two sockets: handle returns
	// now, and release runs when both directions have ended.
	err = pc.forward(l.fwd, client, up, m, func(sent, received int64) { l.release(pc, sent, received) })
	if err != nil {
		if !errors.Is(err, errClosedWhileDialling) {
			l.log.WithError(err).WithField("client", pc.remote()).Warn("can't forward; closing client")
		}
		l.release(pc, 0, 0)
	}
}

// forward starts forwarding between client (pc.client, or TLS over it) and
// up with f, counting bytes into m, unless the connection was closed while
// up was being dialled. On error both connections are closed and done is
// not called.
func (c *proxyConn) forward(f *forward.Forwarder, client, up net.Conn, m forward.Meters, done func(sent, received int64)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_, _ = up.Close(), c.client.Close()
		return errClosedWhileDialling
	}
	fwd, err := f.StartMetered(client, up, m, done)
	if err == nil {
		c.fwd = fwd
	}
	return err
}
