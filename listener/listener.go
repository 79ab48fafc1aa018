// Package listener accepts, tracks and drains: an accept loop per
// listener, byte forwarding to the upstream pool, connection tracking and
// draining. Applying configuration to the listeners is gateway/reconcile's
// job.
package listener

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
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
	acceptFails        acceptFailures // accept.go

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

// StopIdleReaper ends what a closed listener still runs for its connections (the
// idle reaper) once the last of them is gone; its owner calls it when it
// forgets the listener.
func (l *Listener) StopIdleReaper() { l.cancel() }

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

// Serve accepts connections until the listener is closed: in the
// forwarder's loops when they can serve its clients alone (serveloops.go),
// else with Go's Accept (accept.go). A Serve after Close returns at once.
func (l *Listener) Serve() error {
	if !l.startServing() {
		return nil
	}
	defer l.serving.Done()
	go l.reapIdle()
	stop := make(chan struct{})
	defer close(stop) // idle workers exit
	w := newWorkers(l.handle, stop)
	if !l.serveInLoops(w) {
		l.acceptLoop(w)
	}
	return nil
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
