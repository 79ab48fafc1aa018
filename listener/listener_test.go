package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// startListener serves a new listener in front of backend.
func startListener(t testing.TB, backend string) *Listener {
	t.Helper()
	l := newListener(t, backend)
	go func() { _ = l.Serve() }()
	return l
}

// newListener returns a new listener, not yet serving, in front of
// backend.
func newListener(t testing.TB, backend string) *Listener {
	t.Helper()
	pool := upstream.NewPool(upstream.Options{})
	t.Cleanup(pool.Close)
	pool.UpdateFrom("config", []resolver.Endpoint{{Addr: backend}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	if tt, ok := t.(*testing.T); ok {
		log = testutil.Logger(tt)
	}
	l, err := New("test", ln, pool, Options{Forwarder: newForwarder(t), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// newForwarder returns a forwarder closed at the end of the test, after
// the listeners given it (their cleanups, registered later, run first).
func newForwarder(t testing.TB) *forward.Forwarder {
	t.Helper()
	f, err := forward.NewForwarder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// dialThrough opens n connections through l, each checked with an echo.
func dialThrough(t *testing.T, l *Listener, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		roundTrip(t, c, []byte("ping"))
		cs = append(cs, c)
	}
	return cs
}

// closeForwarder closes l's forwarder, as its owner does once every
// listener drained, and waits for its loops to exit: a connection of l
// left in it would be ended there and released a second time.
func closeForwarder(t *testing.T, l *Listener) {
	t.Helper()
	if err := l.fwd.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the forwarder's loops to exit", testTimeout, l.fwd.Stopped)
	if n := l.OpenConns(); n != 0 {
		t.Fatalf("%d open connections once the forwarder stopped, want 0", n)
	}
}

// testTimeout bounds every blocking step of these tests, so that a bug
// fails a test instead of hanging it. It is never a speed assertion.
const testTimeout = 20 * time.Second

// roundTrip sends msg on c and reads its echo.
func roundTrip(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	if err := testutil.RoundTrip(c, string(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	l := startListener(t, testutil.Echo(t).Addr)
	clients := dialThrough(t, l, 20)
	if got := l.OpenConns(); got != 20 {
		t.Fatalf("%d open connections, want 20", got)
	}
	// No time to drain: the idle connections are closed at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown returned %v, want context.Canceled", err)
	}
	if got := l.OpenConns(); got != 0 {
		t.Fatalf("%d open connections after Shutdown", got)
	}
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client could still read after Shutdown")
		}
	}
	closeForwarder(t, l)
}

func TestShutdownDrainsConnectionsThatEnd(t *testing.T) {
	l := startListener(t, testutil.Echo(t).Addr)
	clients := dialThrough(t, l, 5)
	shut := make(chan error, 1)
	go func() { shut <- l.Shutdown(context.Background()) }()
	// The clients end their connections themselves: Shutdown returns.
	for _, c := range clients {
		roundTrip(t, c, []byte("still served"))
		c.Close()
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	closeForwarder(t, l)
}

// TestClosedListenerReleasesItsConnectionsToTheLast: after Close the
// connections go on, and the listener lets go of each as it ends,
// leaving nothing in the forwarder it shares.
func TestClosedListenerReleasesItsConnectionsToTheLast(t *testing.T) {
	l := startListener(t, testutil.Echo(t).Addr)
	clients := dialThrough(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Connections go on after Close.
	for _, c := range clients {
		roundTrip(t, c, []byte("after close"))
	}
	for _, c := range clients {
		c.Close()
	}
	testutil.WaitFor(t, "the last connection to be released", testTimeout, func() bool { return l.OpenConns() == 0 })
	closeForwarder(t, l)

	idle := startListener(t, testutil.Echo(t).Addr)
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	closeForwarder(t, idle)
}

// TestCloseBeforeServe: Close returns at once on a listener never
// served, as net/http.Server's does, and a Serve after it returns at once
// without accepting.
func TestCloseBeforeServe(t *testing.T) {
	l := newListener(t, testutil.Echo(t).Addr)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("Close before Serve did not return")
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve() }()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Serve after Close did not return")
	}
	if _, err := l.ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the socket of a listener closed before Serve: accept: %v, want net.ErrClosed", err)
	}
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
