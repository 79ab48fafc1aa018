package listener

import (
	"context"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// drainClients is how many clients the drain test runs, each with one
// connection, as etcd clients keep.
const drainClients = 100

// TestDrainMovesEtcdClients drains a member under 100 clientv3 clients
// that each do a put or a get every 20 to 100 ms: the drain ends with the
// member holding none of them, and no client request fails, since the
// member stays up and only moves end connections.
func TestDrainMovesEtcdClients(t *testing.T) {
	c := testutil.Cluster(t, 3)
	// Checks as patient as the gateway's defaults: 100 clients under
	// -race on a loaded machine slow /health past etcdListener's.
	hc := upstream.HealthCheck{Type: config.CheckEtcd, Interval: time.Second, Timeout: 5 * time.Second, Fall: 3, Rise: 1}
	l, pool := settingsListener(t, c, upstream.Settings{Policy: config.PolicyRoundRobin, HealthCheck: hc})
	w := startWorkload(t, l.Addr().String(), drainClients)
	testutil.WaitFor(t, "every client connected", testTimeout, func() bool { return l.OpenConns() == drainClients })
	testutil.WaitFor(t, "every client at work", testTimeout, func() bool { return w.ops.Load() >= 2*drainClients })
	addr := c.Members[0].ClientAddr()
	ep := poolEndpoint(t, pool, addr)
	held := ep.OpenConns()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	res, err := pool.Drain(ctx, addr)
	took := time.Since(began)
	n, failed := w.stop()
	t.Logf("drained %d connections in %s: %+v; %d client requests, %d failed: %v", held, took.Round(time.Millisecond), res, n, len(failed), failed)
	if err != nil || ep.OpenConns() != 0 {
		t.Fatalf("Drain = %v with %d connections left", err, ep.OpenConns())
	}
	if len(failed) > 0 {
		t.Errorf("%d client requests failed during a drain", len(failed))
	}
}
