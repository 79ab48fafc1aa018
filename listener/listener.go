// Package listener runs the gateway's listeners: an accept loop per
// listener, byte forwarding to the upstream pool, connection tracking and
// draining, and a Group that applies configuration snapshots to the live
// listeners as a diff.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
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
	total  atomic.Uint64
	closed atomic.Bool
	done   chan struct{} // closed when Serve returns

	// Limits and counters beyond open/total: see limits.go.
	limits        atomic.Pointer[Limits]
	limitsChanged chan struct{}
	counters      counters

	// serverTLS is the TLS served to new clients, nil for plain TCP; see
	// servetls.go.
	serverTLS atomic.Pointer[tls.Config]
}

// proxyConn is a client connection and, once dialled, its upstream.
type proxyConn struct {
	client net.Conn
	mu     sync.Mutex
	up     net.Conn
	closed bool
}

// Close closes both sides of the proxied connection.
func (c *proxyConn) Close() error {
	c.mu.Lock()
	c.closed = true
	up := c.up
	c.mu.Unlock()
	if up != nil {
		_ = up.Close()
	}
	return c.client.Close()
}

// setUpstream records up, or closes it and reports false when the
// connection was closed while up was being dialled.
func (c *proxyConn) setUpstream(up net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = up.Close()
		return false
	}
	c.up = up
	return true
}

// New returns a listener that serves ln with pool. Serve must be started
// before Close or Shutdown is called.
func New(name string, ln net.Listener, pool *upstream.Pool, log logrus.FieldLogger) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{name: name, ln: ln, pool: pool, log: log, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	l.limits.Store(&Limits{})
	l.limitsChanged = make(chan struct{}, 1)
	return l
}

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
// with backoff; they never end the loop.
func (l *Listener) Serve() error {
	defer close(l.done)
	go l.reapIdle()
	var backoff time.Duration
	var lastLog time.Time
	suppressed := 0
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
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
		pc := &proxyConn{client: c}
		l.conns.Store(pc, struct{}{})
		l.open.Add(1)
		l.total.Add(1)
		l.wg.Add(1)
		go l.handle(pc)
	}
}

func (l *Listener) handle(pc *proxyConn) {
	defer func() {
		l.conns.Delete(pc)
		l.open.Add(-1)
		l.wg.Done()
	}()
	start := time.Now()
	client, ok := l.serveTLS(pc)
	if !ok {
		return
	}
	up, ep, err := l.pool.Dial(l.ctx)
	if err != nil {
		l.counters.noUpstream.Add(1)
		l.log.WithError(err).WithField("client", pc.client.RemoteAddr().String()).Warn("no upstream for client; closing it")
		_ = pc.client.Close()
		return
	}
	setKeepAlive(up, l.limits.Load().KeepAlive)
	if !pc.setUpstream(up) {
		_ = pc.client.Close()
		return
	}
	untrack := ep.Track(pc)
	defer untrack()
	log := l.log.WithFields(logrus.Fields{"endpoint": ep.Addr(), "client": pc.client.RemoteAddr().String()})
	log.Debug("connection opened")
	sent, received := Forward(client, up)
	l.counters.addBytes(ep, sent, received)
	log.WithFields(logrus.Fields{"bytes-sent": sent, "bytes-received": received, "duration": time.Since(start).String()}).Debug("connection closed")
}

// Close stops accepting. Open connections are left alone; see Shutdown.
func (l *Listener) Close() error {
	l.closed.Store(true)
	err := l.ln.Close()
	<-l.done
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
