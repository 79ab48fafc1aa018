package gateway

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/gateway/control"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestDrainShowsEverywhere: a drain asked on the control socket moves the
// endpoint's idle connection, and /status, the status page and /metrics
// show the endpoint drained with its move and its share, until undrained.
// A bad timeout, an unknown listener and an unknown endpoint are refused.
func TestDrainShowsEverywhere(t *testing.T) {
	a, b := testutil.Echo(t).Addr, testutil.Echo(t).Addr
	dir := t.TempDir()
	path, sock, addr, admin := filepath.Join(dir, "gw.yaml"), filepath.Join(dir, "control.sock"), testutil.ListenAddr(t), testutil.ListenAddr(t)
	text := "control-socket: " + sock + "\nadmin-addr: " + admin + "\n" +
		render(listenerSpec{name: "main", addr: addr, endpoints: []string{a, b}, extra: "    policy: round-robin\n"})
	writeFile(t, path, text)
	gw := startFile(t, path)
	for range 2 {
		testutil.Dial(t, addr)
	}
	testutil.WaitFor(t, "two connections tracked", 5*time.Second, func() bool { return gw.Status().Listeners[0].OpenConnections == 2 })
	c := control.NewClient(sock)
	ctx := context.Background()
	for _, bad := range []DrainRequest{
		{Listener: "main", Endpoint: a, Timeout: "-1s"},
		{Listener: "nope", Endpoint: a, Timeout: "1s"},
		{Listener: "main", Endpoint: "127.0.0.1:1", Timeout: "1s"},
	} {
		if err := c.Call(ctx, "drain", bad, &DrainAnswer{}); err == nil {
			t.Fatalf("drain %+v succeeded", bad)
		}
	}
	var da DrainAnswer
	if err := c.Call(ctx, "drain", DrainRequest{Listener: "main", Endpoint: a, Timeout: "5s"}, &da); err != nil || da.Moved != 1 || da.Open != 0 {
		t.Fatalf("drain: %+v, %v", da, err)
	}
	ep := gw.Status().Listeners[0].Endpoints[0]
	if ep.Address != a || !ep.Drained || ep.State != stateDrained || ep.Moves.Drain != 1 || ep.Share != 0 || !strings.HasPrefix(ep.Reason, reasonDrained) {
		t.Fatalf("/status of the drained endpoint: %+v", ep)
	}
	if other := gw.Status().Listeners[0].Endpoints[1]; other.Share != 1 {
		t.Fatalf("share of the other endpoint: %v, want 1", other.Share)
	}
	m := scrape(t, admin)
	m.expect(t, 1, "etcd_gateway_endpoint_drained", "endpoint", a)
	m.expect(t, 1, "etcd_gateway_connections_moved_total", "endpoint", a, "reason", "drain")
	m.expect(t, 0, "etcd_gateway_endpoint_up", "endpoint", a)
	code, page := testutil.Get(t, admin, "/")
	if code != http.StatusOK || !strings.Contains(page, "drained <span") || !strings.Contains(page, "100%") {
		t.Fatalf("the status page does not show the drained endpoint and the shares: %d", code)
	}
	if err := c.Call(ctx, "undrain", UndrainRequest{Listener: "main", Endpoint: a}, &UndrainAnswer{}); err != nil {
		t.Fatalf("undrain: %v", err)
	}
	scrape(t, admin).expect(t, 0, "etcd_gateway_endpoint_drained", "endpoint", a)
}
