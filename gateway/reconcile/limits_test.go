package reconcile

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// closedByPeer reports whether c is closed by the other side within
// timeout: a read ends with EOF or a reset rather than a timeout.
func closedByPeer(c net.Conn, timeout time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// wantServed fails the test with msg unless a new connection to addr
// echoes.
func wantServed(t *testing.T, addr, msg string) {
	t.Helper()
	if c := testutil.Dial(t, addr); !testutil.Echoes(c) {
		t.Fatal(msg)
	}
}

func statusOf(t *testing.T, g *Group, name string) Status {
	t.Helper()
	for _, st := range g.Status() {
		if st.Config.Name == name {
			return st
		}
	}
	t.Fatalf("no listener %q in the status", name)
	return Status{}
}

func TestMaxConnectionsClosesAtOnceAndCounts(t *testing.T) {
	t.Parallel()
	lc := listenerConfig("main", []string{testutil.Echo(t).Addr})
	lc.MaxConnections = 2
	g := startGroup(t, lc)
	addr := gatewayAddr(t, g, "main")

	c1, c2 := testutil.Dial(t, addr), testutil.Dial(t, addr)
	if !testutil.Echoes(c1) || !testutil.Echoes(c2) {
		t.Fatal("the first two connections don't echo")
	}
	// The third is closed at once: not served, not queued.
	c3 := testutil.Dial(t, addr)
	if !closedByPeer(c3, 5*time.Second) {
		t.Fatal("the connection past max-connections was not closed")
	}
	st := statusOf(t, g, "main")
	if st.Counters.Rejected != 1 || st.OpenConns != 2 || st.Counters.Accepted != 2 {
		t.Fatalf("rejected %d, open %d, accepted %d; want 1, 2, 2", st.Counters.Rejected, st.OpenConns, st.Counters.Accepted)
	}

	// A slot frees up: the next connection is served.
	c1.Close()
	testutil.WaitFor(t, "the closed connection to end", 5*time.Second, func() bool { return statusOf(t, g, "main").OpenConns == 1 })
	wantServed(t, addr, "a connection under the limit was not served")

	// A reload that lifts the limit applies at once.
	lc.MaxConnections = 0
	mustApply(t, g, lc)
	wantServed(t, addr, "a third connection was refused after the limit was lifted")
	if n := statusOf(t, g, "main").Counters.Rejected; n != 1 {
		t.Fatalf("rejected %d, want still 1", n)
	}
}

// keepBusy echoes through c every period until stop, then sends nil; it
// sends an error as soon as an echo fails.
func keepBusy(c net.Conn, period time.Duration, stop <-chan struct{}) <-chan error {
	errc := make(chan error, 1)
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				errc <- nil
				return
			case <-tick.C:
				if !testutil.Echoes(c) {
					errc <- io.ErrUnexpectedEOF
					return
				}
			}
		}
	}()
	return errc
}

func TestIdleTimeoutClosesOnlyIdleConnections(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	lc := listenerConfig("main", []string{testutil.Echo(t).Addr})
	lc.IdleTimeout = timeout
	g := startGroup(t, lc)
	addr := gatewayAddr(t, g, "main")

	idle, busy := testutil.Dial(t, addr), testutil.Dial(t, addr)
	if !testutil.Echoes(idle) || !testutil.Echoes(busy) {
		t.Fatal("no echo")
	}
	lastTraffic := time.Now()

	// busy echoes every timeout/5 while idle stays silent.
	stop := make(chan struct{})
	busyErr := keepBusy(busy, timeout/5, stop)
	if !closedByPeer(idle, 10*time.Second) {
		t.Fatal("the idle connection was not closed")
	}
	if waited := time.Since(lastTraffic); waited < timeout/2 {
		t.Fatalf("the idle connection was closed after %s, before the %s idle timeout", waited, timeout)
	}
	// The busy one outlives two more timeouts.
	deadline := time.Now().Add(2 * timeout)
	testutil.WaitFor(t, "two idle timeouts", 10*time.Second, func() bool { return time.Now().After(deadline) })
	close(stop)
	if err := <-busyErr; err != nil {
		t.Fatal("the busy connection was closed by the idle timeout")
	}
	st := statusOf(t, g, "main")
	if st.Counters.IdleClosed != 1 {
		t.Fatalf("idle-closed %d, want 1", st.Counters.IdleClosed)
	}

	// Turning the timeout off applies to open connections at once.
	lc.IdleTimeout = 0
	mustApply(t, g, lc)
	quiet := testutil.Dial(t, addr)
	if !testutil.Echoes(quiet) {
		t.Fatal("no echo")
	}
	if closedByPeer(quiet, 2*timeout) {
		t.Fatal("a connection was closed with idle-timeout off")
	}
}

func TestCountersGoOnAcrossRebind(t *testing.T) {
	t.Parallel()
	backend := testutil.Echo(t).Addr
	lc := listenerConfig("main", []string{backend})
	g := startGroup(t, lc)
	c := testutil.Dial(t, gatewayAddr(t, g, "main"))
	if !testutil.Echoes(c) {
		t.Fatal("no echo")
	}
	c.Close()
	testutil.WaitFor(t, "the connection to end", 5*time.Second, func() bool { return statusOf(t, g, "main").OpenConns == 0 })
	before := statusOf(t, g, "main")
	if before.Counters.Accepted != 1 || before.Counters.BytesToUpstream != 4 || before.Counters.BytesToClient != 4 {
		t.Fatalf("counters after one ping: %+v", before.Counters)
	}
	if ep := before.Endpoints[0]; ep.TotalConns != 1 || ep.BytesToUpstream != 4 || ep.BytesToClient != 4 {
		t.Fatalf("endpoint counters after one ping: %+v", ep)
	}

	// Re-bind to another address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lc.ListenAddr = ln.Addr().String()
	ln.Close()
	mustApply(t, g, lc)
	after := statusOf(t, g, "main")
	if after.Addr != lc.ListenAddr || after.Counters != before.Counters {
		t.Fatalf("after the re-bind: addr %s counters %+v, want %s and %+v", after.Addr, after.Counters, lc.ListenAddr, before.Counters)
	}
	wantServed(t, lc.ListenAddr, "no echo on the new address")
	if n := statusOf(t, g, "main").Counters.Accepted; n != 2 {
		t.Fatalf("accepted %d after a connection on the new address, want 2", n)
	}
}

// TestIdleTimeoutCountsTrafficFromUpstream: a client that only receives,
// as an etcd watch does, is not idle.
func TestIdleTimeoutCountsTrafficFromUpstream(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	// The backend sends a byte every timeout/5 and never reads.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tick := time.NewTicker(timeout / 5)
		defer tick.Stop()
		for i := 0; i < 100; i++ { // bounded
			<-tick.C
			if _, err := c.Write([]byte("e")); err != nil {
				return
			}
		}
	}()
	lc := listenerConfig("main", []string{ln.Addr().String()})
	lc.IdleTimeout = timeout
	g := startGroup(t, lc)
	c := testutil.Dial(t, gatewayAddr(t, g, "main"))
	deadline := time.Now().Add(3 * timeout)
	buf := make([]byte, 1)
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("the receiving connection ended after %s: %v", time.Since(deadline.Add(-3*timeout)), err)
		}
	}
	if n := statusOf(t, g, "main").Counters.IdleClosed; n != 0 {
		t.Fatalf("idle-closed %d, want 0", n)
	}
}
