// Package listener runs the gateway's listeners: an accept loop per
// listener, byte forwarding to the upstream pool, connection tracking and
// draining, and a Group that applies configuration snapshots to the live
// listeners as a diff.
package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

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

	ctx    context.Context // canceled when the listener shuts down
	cancel context.CancelFunc

	conns  sync.Map // *proxyConn → struct{}
	wg     sync.WaitGroup
	open   atomic.Int64
	closed atomic.Bool
	done   chan struct{} // closed when Serve returns

	fwd    *Forwarder // nil when it could not be started: fwdErr says why
	fwdErr error
}

// errClosedWhileDialling reports a client closed before its upstream was
// connected.
var errClosedWhileDialling = errors.New("connection closed while dialling")

// proxyConn is a client connection and, once dialled, its forwarding.
type proxyConn struct {
	client net.Conn
	mu     sync.Mutex
	fwd    io.Closer
	closed bool
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
	return c.client.Close()
}

// forward starts forwarding between the client and up with f, unless the
// connection was closed while up was being dialled. On error both
// connections are closed and done is not called.
func (c *proxyConn) forward(f *Forwarder, up net.Conn, done func(sent, received int64)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_, _ = up.Close(), c.client.Close()
		return errClosedWhileDialling
	}
	fwd, err := f.Start(c.client, up, done)
	c.fwd = fwd
	return err
}

// New returns a listener that serves ln with pool. Serve must be started
// before Close or Shutdown is called.
func New(name string, ln net.Listener, pool *upstream.Pool, log logrus.FieldLogger) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	fwd, err := NewForwarder()
	return &Listener{name: name, ln: ln, pool: pool, log: log, ctx: ctx, cancel: cancel, done: make(chan struct{}), fwd: fwd, fwdErr: err}
}

// Name is the listener's configured name.
func (l *Listener) Name() string { return l.name }

// Addr is the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Pool is the pool new connections are forwarded to.
func (l *Listener) Pool() *upstream.Pool { return l.pool }

// OpenConns is the number of client connections open now.
func (l *Listener) OpenConns() int64 { return l.open.Load() }

// Serve accepts connections until the listener is closed. Transient accept
// errors (such as running out of file descriptors) are logged and retried
// with backoff; they never end the loop.
func (l *Listener) Serve() error {
	defer close(l.done)
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			l.log.WithError(err).WithField("retry-in", backoff).Error("accept failed")
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		pc := &proxyConn{client: c}
		l.conns.Store(pc, struct{}{})
		l.open.Add(1)
		l.wg.Add(1)
		go l.handle(pc)
	}
}

func (l *Listener) handle(pc *proxyConn) {
	start := time.Now()
	if l.fwd == nil {
		l.log.WithError(l.fwdErr).Error("no forwarder; closing client")
		_ = pc.client.Close()
		l.release(pc)
		return
	}
	up, ep, err := l.pool.Dial(l.ctx)
	if err != nil {
		l.log.WithError(err).WithField("client", pc.client.RemoteAddr().String()).Warn("no upstream for client; closing it")
		_ = pc.client.Close()
		l.release(pc)
		return
	}
	untrack := ep.Track(pc)
	debug := debugEnabled(l.log) // the fields cost allocations: build them only for debug
	if debug {
		l.log.WithFields(logrus.Fields{"endpoint": ep.Addr(), "client": pc.client.RemoteAddr().String()}).Debug("connection opened")
	}
	// The forwarder holds no goroutine for the connection: handle returns
	// now, and done runs when both directions have ended.
	err = pc.forward(l.fwd, up, func(sent, received int64) {
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

// release forgets an ended connection. The forwarder of a closed listener
// stops with its last connection.
func (l *Listener) release(pc *proxyConn) {
	l.conns.Delete(pc)
	last := l.open.Add(-1) == 0
	l.wg.Done()
	if last && l.closed.Load() {
		go l.closeForwarder() // not on the forwarder's own goroutine
	}
}

func (l *Listener) closeForwarder() {
	if l.fwd != nil {
		_ = l.fwd.Close()
	}
}

// Close stops accepting. Open connections are left alone; see Shutdown.
func (l *Listener) Close() error {
	l.closed.Store(true)
	err := l.ln.Close()
	<-l.done
	if l.open.Load() == 0 {
		l.closeForwarder()
	}
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
	select {
	case <-idle:
		l.cancel()
		l.closeForwarder()
		return nil
	case <-ctx.Done():
	}
	l.cancel()
	l.conns.Range(func(k, _ any) bool {
		_ = k.(*proxyConn).Close()
		return true
	})
	<-idle
	l.closeForwarder()
	return ctx.Err()
}
