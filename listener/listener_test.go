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
	l := New("test", ln, pool, log)
	if l.fwdErr != nil {
		t.Fatal(l.fwdErr)
	}
	return l
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

// waitStopped waits for every loop of f to exit, for at most testTimeout.
func waitStopped(t *testing.T, f *forward.Forwarder) {
	t.Helper()
	testutil.WaitFor(t, "the forwarder's loops to exit", testTimeout, f.Stopped)
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
	waitStopped(t, l.fwd)
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
	waitStopped(t, l.fwd)
}

func TestClosedListenerStopsItsForwarderWithTheLastConnection(t *testing.T) {
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
	waitStopped(t, l.fwd)

	idle := startListener(t, testutil.Echo(t).Addr)
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, idle.fwd)
}
