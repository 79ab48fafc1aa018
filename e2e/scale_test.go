//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestFiveThousandConcurrentConnections holds 5,000 proxied connections
// open at once through one listener of a gateway process, checks every one
// answers while all are open, and that the gateway's descriptors come back
// down when they close.
func TestFiveThousandConcurrentConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	echo := testutil.Echo(t)
	addr := testutil.ListenAddr(t)
	gw := startChild(t, writeConfig(t, addr, echo.Addr, ""), addr, 0)
	baseline := gw.fds(t)

	const n = 5000
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	dialEach(t, addr, conns)
	allStillAnswer(t, conns)
	twoDescriptorsEach(t, gw, baseline, n)
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	testutil.WaitFor(t, "the gateway's descriptors to return to baseline", 20*time.Second, func() bool { return gw.fds(t) <= baseline+4 })
	if err := gw.stop(t); err != nil {
		t.Fatalf("gateway exit after SIGTERM: %v", err)
	}
}

// dialEach fills conns with connections to addr, each of which has
// answered a round trip, 64 dialing at once; any failure fails the test.
func dialEach(t *testing.T, addr string, conns []net.Conn) {
	t.Helper()
	const workers = 64
	n := len(conns)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Pointer[string]
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err == nil {
					err = testutil.RoundTrip(c, fmt.Sprintf("hello %05d", i))
				}
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d connections failed, first: %s", f, n, *firstErr.Load())
	}
}

// allStillAnswer checks that every connection still answers while all
// are open.
func allStillAnswer(t *testing.T, conns []net.Conn) {
	t.Helper()
	for i, c := range conns {
		if err := testutil.RoundTrip(c, "again"); err != nil {
			t.Fatalf("connection %d of %d, all open: %v", i, len(conns), err)
		}
	}
}

// twoDescriptorsEach checks that the gateway holds two sockets per
// proxied connection, and nothing more: no pipe, no spare descriptor held
// while the n connections sit idle (≤ 2.1 each).
func twoDescriptorsEach(t *testing.T, gw *child, baseline, n int) {
	t.Helper()
	if got := gw.fds(t); got < 2*n || got > baseline+21*n/10 {
		t.Fatalf("gateway holds %d descriptors for %d idle connections (baseline %d): want 2 to 2.1 each", got, n, baseline)
	}
}

// fds counts the child's open descriptors.
func (c *child) fds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
