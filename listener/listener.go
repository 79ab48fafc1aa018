// Package listener accepts, tracks and drains: an accept loop per
// listener, byte forwarding to the upstream pool, connection tracking and
// draining. Applying configuration to the listeners is gateway/reconcile's
// job.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// Accept backoff after a transient error, doubling from min to max.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// Listener accepts client connections on one address and forwards each to
// an endpoint of its pool.
type Listener struct {
	name string
	ln   net.Listener
	pool *upstream.Pool
	log  logrus.FieldLogger
	fwd  *forward.Forwarder // the process's, shared by its listeners
	// fds is the descriptor budget shared by a gateway's listeners (nil:
	// never pause); see fds.go.
	fds *FDBudget

	ctx    context.Context // canceled when the listener shuts down
	cancel context.CancelFunc

	conns  sync.Map // *proxyConn → struct{}
	wg     sync.WaitGroup
	open   atomic.Int64
	total  atomic.Uint64
	closed atomic.Bool

	// Limits and counters beyond open/total: see limits.go.
	limits atomic.Pointer[Limits]
	// keepAliveInherited is set when the listening socket carries the
	// keepalive, which accepted connections inherit.
	keepAliveInherited atomic.Bool
	limitsChanged      chan struct{}
	counters           counters

	// serverTLS is the TLS served to new clients, nil for plain TCP; see
	// servetls.go.
	serverTLS atomic.Pointer[tls.Config]

	// serveMu orders Serve's start with Close: serving counts the Serve
	// running, which Close waits for; when the forwarder's loops accept
	// (serveloops.go), svc is their service, and stopServing is closed by
	// Close.
	serveMu     sync.Mutex
	serving     sync.WaitGroup
	svc         *forward.Service
	stopServing chan struct{}
	stopOnce    sync.Once
	// loopDialled counts the clients whose upstream a loop connected.
	loopDialled atomic.Uint64
}

// errClosedWhileDialling reports a client closed before its upstream was
// connected.
var errClosedWhileDialling = errors.New("connection closed while dialling")

// proxyConn is a client connection and, once dialled, its forwarding. A
// client accepted by the forwarder's loops has no net.Conn: its loop owns
// its descriptor, and peer is its address.
type proxyConn struct {
	client net.Conn // nil for a client accepted by the loops
	peer   netip.AddrPort
	unix   bool // the client came on a unix socket
	mu     sync.Mutex
	up     net.Conn  // the upstream connection, once dialled
	fwd    io.Closer // the forwarding of both, once started
	ep     string    // the endpoint's address, once dialled (handover.go)
	closed bool
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

// Close closes both sides of the proxied connection.
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

// forward starts forwarding between client (pc.client, or TLS over it) and
// up with f, counting bytes into m, unless the connection was closed while
// up was being dialled. On error both
// connections are closed and done is not called.
func (c *proxyConn) forward(f *forward.Forwarder, client, up net.Conn, m forward.Meters, done func(sent, received int64)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_, _ = up.Close(), c.client.Close()
		return errClosedWhileDialling
	}
	fwd, err := f.StartMetered(client, up, m, done)
	c.up, c.fwd = up, fwd
	return err
}

// Options are what a listener shares with the other listeners of its
// process.
type Options struct {
	// Forwarder carries the listener's connections; required. One per
	// process, whose owner closes it after the last listener drained.
	Forwarder *forward.Forwarder
	// Budget makes the listener pause accepting while few file
	// descriptors are left; nil never pauses.
	Budget *FDBudget
	Log    logrus.FieldLogger
}

// New returns a listener that serves ln with pool, its connections
// carried by o.Forwarder.
func New(name string, ln net.Listener, pool *upstream.Pool, o Options) (*Listener, error) {
	if o.Forwarder == nil {
		return nil, fmt.Errorf("listener %q: no forwarder", name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{name: name, ln: ln, pool: pool, log: o.Log, fwd: o.Forwarder, fds: o.Budget, ctx: ctx, cancel: cancel}
	l.stopServing = make(chan struct{})
	l.counters.bytes = upstream.NewByteCounter()
	l.limits.Store(&Limits{})
	l.limitsChanged = make(chan struct{}, 1)
	return l, nil
}

// Retire ends what a closed listener still runs for its connections (the
// idle reaper) once the last of them is gone; its owner calls it when it
// forgets the listener.
func (l *Listener) Retire() { l.cancel() }

// Serving reports whether the listener accepts connections: it was not
// closed.
func (l *Listener) Serving() bool { return !l.closed.Load() }

// Name is the listener's configured name.
func (l *Listener) Name() string { return l.name }

// Addr is the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Pool is the pool new connections are forwarded to.
func (l *Listener) Pool() *upstream.Pool { return l.pool }

// OpenConns is the number of client connections open now.
func (l *Listener) OpenConns() int64 { return l.open.Load() }

// TotalConns is the number of client connections accepted so far.
func (l *Listener) TotalConns() uint64 { return l.total.Load() }

// Serve accepts connections until the listener is closed. Transient accept
// errors (such as running out of file descriptors) are logged and retried
// with backoff; they never end the loop. A Serve after Close returns at
// once.
func (l *Listener) Serve() error {
	if !l.startServing() {
		return nil
	}
	defer l.serving.Done()
	go l.reapIdle()
	stop := make(chan struct{})
	defer close(stop) // idle workers exit
	w := newWorkers(l.handle, stop)
	if l.serveInLoops(w) {
		return nil
	}
	var backoff time.Duration
	var lastLog time.Time
	suppressed := 0
	for {
		if !l.fds.waitRoom(l.ctx, &l.closed, l.log) {
			return nil
		}
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			l.fds.stale()
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			// At the open-file limit this repeats quickly: one line a second.
			if time.Since(lastLog) >= time.Second {
				l.log.WithError(err).WithFields(logrus.Fields{"retry-in": backoff.String(), "suppressed": suppressed}).Error("accept failed")
				lastLog, suppressed = time.Now(), 0
			} else {
				suppressed++
			}
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		if !l.admit(c) {
			continue
		}
		_, unixClient := c.(*net.UnixConn)
		pc := &proxyConn{client: c, unix: unixClient}
		l.track(pc)
		w.run(pc)
	}
}

// startServing counts a Serve that starts, unless Close came first.
func (l *Listener) startServing() bool {
	l.serveMu.Lock()
	defer l.serveMu.Unlock()
	if l.closed.Load() {
		return false
	}
	l.serving.Add(1)
	return true
}

// track counts and tracks a client just accepted, until release.
func (l *Listener) track(pc *proxyConn) {
	l.conns.Store(pc, struct{}{})
	l.fds.take()
	l.open.Add(1)
	l.total.Add(1)
	l.wg.Add(1)
}

func (l *Listener) handle(pc *proxyConn) {
	start := time.Now()
	client, ok := l.serveTLS(pc) // pc.client itself when the listener has no tls block
	if !ok {
		l.release(pc)
		return
	}
	if sock, ok := client.(forward.Socket); ok && client == pc.client && l.connectInLoop(pc, sock) {
		return
	}
	up, ep, err := l.pool.Dial(l.ctx)
	if err != nil {
		l.noUpstream(pc, err)
		_ = pc.client.Close()
		l.release(pc)
		return
	}
	setKeepAlive(up, l.limits.Load().KeepAlive)
	untrack := ep.Track(pc)
	pc.ep = ep.Addr()            // before forward: read under pc.mu once fwd is set
	debug := debugEnabled(l.log) // the fields cost allocations: build them only for debug
	if debug {
		l.log.WithFields(logrus.Fields{"endpoint": ep.Addr(), "client": pc.client.RemoteAddr().String()}).Debug("connection opened")
	}
	// The forwarder holds no goroutine for the connection: handle returns
	// now, and done runs when both directions have ended.
	meters := forward.Meters{Listener: l.counters.bytes, Endpoint: ep.Bytes()}
	err = pc.forward(l.fwd, client, up, meters, func(sent, received int64) {
		untrack()
		if debug {
			l.log.WithFields(logrus.Fields{
				"endpoint": ep.Addr(), "client": pc.client.RemoteAddr().String(),
				"bytes-sent": sent, "bytes-received": received, "duration": time.Since(start).String(),
			}).Debug("connection closed")
		}
		l.release(pc)
	})
	if err != nil {
		untrack()
		if !errors.Is(err, errClosedWhileDialling) {
			l.log.WithError(err).WithField("client", pc.client.RemoteAddr().String()).Warn("can't forward; closing client")
		}
		l.release(pc)
	}
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

// release forgets an ended connection.
func (l *Listener) release(pc *proxyConn) {
	l.conns.Delete(pc)
	l.fds.give()
	l.open.Add(-1)
	l.wg.Done()
}

// Close stops accepting and returns once no client is accepted any more.
// Open connections are left alone; see Shutdown. It may be called before
// Serve, or without it.
func (l *Listener) Close() error {
	l.serveMu.Lock()
	l.closed.Store(true)
	l.serveMu.Unlock()
	l.stopService()
	err := l.ln.Close()
	l.serving.Wait()
	return err
}

// Shutdown stops accepting, waits for open connections to end until ctx is
// done, then closes the rest. It returns once every connection has ended.
func (l *Listener) Shutdown(ctx context.Context) error {
	_ = l.Close()
	idle := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(idle)
	}()
	defer l.cancel()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	l.cancel()
	l.conns.Range(func(k, _ any) bool {
		_ = k.(*proxyConn).Close()
		return true
	})
	<-idle
	return ctx.Err()
}
