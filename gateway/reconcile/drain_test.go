package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// drainedOf returns the drained addresses of a listener's pool.
func drainedOf(t *testing.T, g *Group, name string) []string {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.listeners[name].pool.Drained()
}

// TestDrainMarkFollowsTheFile: a drained endpoint moves its quiet
// connection and stays drained across a reload that keeps its address;
// a reload that removes the address and one that adds it back leave it
// undrained. Unknown listeners and endpoints are named in the errors.
func TestDrainMarkFollowsTheFile(t *testing.T) {
	t.Parallel()
	a, b := testutil.Echo(t).Addr, testutil.Echo(t).Addr
	lc := listenerConfig("main", []string{a, b})
	lc.Policy = "round-robin"
	g := startGroup(t, lc)
	for range 2 { // round-robin: one each
		testutil.Dial(t, gatewayAddr(t, g, "main"))
	}
	testutil.WaitFor(t, "both connections tracked", 5*time.Second, func() bool {
		return statusOf(t, g, "main").OpenConns == 2
	})
	d, err := g.Drain(context.Background(), "main", a)
	if err != nil || d.Endpoint != a || d.Moved != 1 || d.Closed != 0 || d.Open != 0 {
		t.Fatalf("Drain: %+v, %v; want 1 moved", d, err)
	}
	lc.DialTimeout = 2 * time.Second // a changed listener
	mustApply(t, g, lc)
	if got := drainedOf(t, g, "main"); len(got) != 1 || got[0] != a {
		t.Fatalf("drained after a reload that keeps %s: %v", a, got)
	}
	lc.Endpoints = []string{b}
	mustApply(t, g, lc)
	lc.Endpoints = []string{a, b}
	mustApply(t, g, lc)
	if got := drainedOf(t, g, "main"); len(got) != 0 {
		t.Fatalf("drained after %s was removed and added back: %v", a, got)
	}

	if _, err := g.Drain(context.Background(), "nope", a); err == nil || !strings.Contains(err.Error(), `listener "nope": no such listener`) {
		t.Fatalf("Drain of an unknown listener: %v", err)
	}
	_, err = g.Undrain("main", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "endpoint 127.0.0.1:1: no such endpoint") || !strings.Contains(err.Error(), a+", "+b) {
		t.Fatalf("Undrain of an unknown endpoint: %v", err)
	}
}
