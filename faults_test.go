package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestAcceptAtOpenFileLimit runs the gateway with 64 descriptors and opens
// more connections than it can hold: accept fails with EMFILE, which must
// be logged and retried with backoff, not end the process, and the gateway
// recovers once descriptors are free again. The member is not blamed.
func TestAcceptAtOpenFileLimit(t *testing.T) {
	echo := testutil.Echo(t)
	addr := testutil.FreeAddr(t)
	gw := startChild(t, writeConfig(t, addr, echo.Addr, ""), addr, 64)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 60; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break // the backlog is full too
		}
		conns = append(conns, c)
	}
	// Ask each for an echo; those past the limit get none.
	answered := 0
	for _, c := range conns {
		_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write([]byte("x")); err == nil {
			if _, err := c.Read(make([]byte, 1)); err == nil {
				answered++
			}
		}
	}
	if answered == 0 || answered == len(conns) {
		t.Fatalf("%d of %d connections answered; want the limit to cut in part way", answered, len(conns))
	}
	testutil.WaitFor(t, "an accept error in the log", 10*time.Second, func() bool {
		return len(gw.logLines("accept failed")) > 0
	})
	if !strings.Contains(gw.logLines("accept failed")[0], "too many open files") {
		t.Fatalf("accept error line: %s", gw.logLines("accept failed")[0])
	}
	// Free the descriptors: new clients are served again.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testutil.WaitFor(t, "the gateway to serve again", 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		return testutil.RoundTrip(c, "back") == nil
	})
	if lines := gw.logLines("endpoint deactivated"); len(lines) > 0 {
		t.Fatalf("running out of descriptors marked the member down: %s", lines[0])
	}
	if err := gw.stop(t); err != nil {
		t.Fatalf("gateway exit after SIGTERM: %v", err)
	}
}
