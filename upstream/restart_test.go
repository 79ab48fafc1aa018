package upstream

import (
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestRestartSeenByTheChecks: a member that restarts without failing
// fall checks returns all the same, as one marked down and up again
// does: its check had to connect anew, and its slow start begins.
func TestRestartSeenByTheChecks(t *testing.T) {
	c := testutil.Cluster(t, 1)
	addr := c.ClientAddrs()[0]
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 100 * time.Millisecond, Timeout: time.Second, Fall: 1000, Rise: 1}
	ep := endpoint(checkedPool(t, Settings{HealthCheck: hc, SlowStart: time.Hour}, addr), addr)
	testutil.WaitFor(t, "the first checks", 10*time.Second, func() bool { return streakOf(ep) >= 2 })
	if ep.slowStart.Load() != nil {
		t.Fatal("a slow start before the restart")
	}
	c.Stop(0)
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the restart seen: a slow start", 10*time.Second, func() bool { return ep.slowStart.Load() != nil })
	if !ep.Healthy() {
		t.Fatal("the member was marked down: the test wants a restart the checks alone can't see")
	}
}

// TestDroppedConnectionIsNoRestart: a check that runs out of time closes
// its connection, and the next check connects anew; that is the
// gateway's doing, no restart. The member closing the connection is one.
func TestDroppedConnectionIsNoRestart(t *testing.T) {
	f := newFakeEtcd(t, false)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 20 * time.Millisecond, Timeout: 100 * time.Millisecond, Fall: 1000, Rise: 1}
	ep := endpoint(checkedPool(t, Settings{HealthCheck: hc, SlowStart: time.Hour}, f.addr), f.addr)
	testutil.WaitFor(t, "the first checks", 10*time.Second, func() bool { return streakOf(ep) >= 2 })
	f.answer.Store(answerHang)
	testutil.WaitFor(t, "a check out of time", 10*time.Second, func() bool { return len(f.gaveUpAfter()) > 0 })
	f.answer.Store(answerHealthy)
	accepted := f.conns.Accepted.Load()
	testutil.WaitFor(t, "checks on a new connection", 10*time.Second, func() bool {
		return f.conns.Accepted.Load() > accepted && streakOf(ep) >= 3
	})
	if ep.slowStart.Load() != nil {
		t.Fatal("a connection the check dropped was taken for a restart")
	}
	f.CloseClientConnections()
	testutil.WaitFor(t, "the member's close seen as a restart", 10*time.Second, func() bool { return ep.slowStart.Load() != nil })
}
