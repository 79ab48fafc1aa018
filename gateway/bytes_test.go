package gateway

import (
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestBytesCountedWhileConnectionsAreOpen: etcd connections live for days,
// so the byte counters of /metrics and /status move with the traffic of a
// connection that stays open, and its close counts nothing twice.
func TestBytesCountedWhileConnectionsAreOpen(t *testing.T) {
	backend := testutil.Echo(t).Addr
	addr, adminAddr := startMainWithAdmin(t, "", backend)
	c := testutil.Dial(t, addr)
	for ping := 1; ping <= 3; ping++ {
		if !testutil.Echoes(c) {
			t.Fatal("no echo")
		}
		expectBytes(t, adminAddr, backend, float64(4*ping))
	}
	c.Close()
	waitMetric(t, adminAddr, 0, "etcd_gateway_listener_connections_open", "listener", "main")
	expectBytes(t, adminAddr, backend, 12)
}

// expectBytes waits until /metrics and /status count want bytes each way,
// for the listener main and its endpoint.
func expectBytes(t *testing.T, adminAddr, endpoint string, want float64) {
	t.Helper()
	for _, dir := range []string{toUpstream, toClient} {
		waitMetric(t, adminAddr, want, "etcd_gateway_listener_bytes_total", "listener", "main", "direction", dir)
		waitMetric(t, adminAddr, want, "etcd_gateway_endpoint_bytes_total", "listener", "main", "endpoint", endpoint, "direction", dir)
	}
	testutil.WaitFor(t, "/status byte counts", 5*time.Second, func() bool {
		ls := status(t, adminAddr).Listeners[0]
		ep := ls.Endpoints[0]
		return float64(ls.BytesToUpstream) == want && float64(ls.BytesToClient) == want &&
			float64(ep.BytesToUpstream) == want && float64(ep.BytesToClient) == want
	})
}
