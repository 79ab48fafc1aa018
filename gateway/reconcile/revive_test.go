package reconcile

import (
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestReloadReaddingAnEndpointKeepsItsOpenCount: a reload removes the
// endpoint of an open connection and the next adds it back; the status
// counts the connection on the endpoint, and its bytes, all along.
func TestReloadReaddingAnEndpointKeepsItsOpenCount(t *testing.T) {
	t.Parallel()
	b, a := testutil.Echo(t).Addr, testutil.Echo(t).Addr
	lc := listenerConfig("main", []string{b})
	g := startGroup(t, lc)
	c := testutil.Dial(t, gatewayAddr(t, g, "main"))
	if !testutil.Echoes(c) {
		t.Fatal("no echo")
	}
	apply := func(eps ...string) {
		t.Helper()
		lc.Endpoints = eps
		mustApply(t, g, lc)
	}
	apply(a)
	apply(b, a)
	if !testutil.Echoes(c) {
		t.Fatal("no echo after the reloads")
	}
	var ep EndpointStatus
	// The loop counts bytes just after it writes them: wait for it.
	testutil.WaitFor(t, "the re-added endpoint's counts", 5*time.Second, func() bool {
		for _, e := range statusOf(t, g, "main").Endpoints {
			if e.Addr == b {
				ep = e
			}
		}
		return ep.BytesToClient == 8
	})
	if ep.OpenConns != 1 || ep.TotalConns != 1 || ep.BytesToUpstream != 8 {
		t.Fatalf("re-added endpoint %s: %+v; want its open connection and 8 bytes each way", b, ep)
	}
}
