package upstream

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// puts writes n keys through cli.
func puts(t *testing.T, cli *clientv3.Client, n int) {
	t.Helper()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("k%d", i), "v")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReturningMemberCatchesUpFirst is issue 25, item 5, with real
// members. The pool holds two one-member clusters, so that the member that
// returns is really behind the other (by 300 raft entries): etcd itself
// catches a restarted member up before it serves, too fast to watch. Back,
// the member is held, though its checks pass and the (ordered) policy
// prefers it, while its applied index is more than lag-max behind; once
// writes bring it within lag-max it takes clients, and the catch-up ends
// on a comparison, not for want of one: the interval leaves a loaded
// machine's check rounds, each a /health and a Status, time to keep the
// readings fresh.
func TestReturningMemberCatchesUpFirst(t *testing.T) {
	back, ahead := testutil.Cluster(t, 1), testutil.Cluster(t, 1)
	a, b := back.ClientAddrs()[0], ahead.ClientAddrs()[0]
	puts(t, testutil.Client(t, b), 300)
	const lagMax = 50
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 200 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1, LagMax: lagMax}
	p := checkedPool(t, Settings{HealthCheck: hc}, a, b)
	ep := endpoint(p, a)
	testutil.WaitFor(t, "a passing check", 10*time.Second, func() bool { ok, _ := ep.Timings().CheckResults(); return ok > 0 })
	if ep.Stats().CatchingUp {
		t.Fatal("a member the gateway found at its start is catching up")
	}

	back.Stop(0)
	testutil.WaitFor(t, "the member to be marked down", 10*time.Second, func() bool { return !ep.Healthy() })
	if err := back.Restart(0); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the member to be back and catching up", 10*time.Second, func() bool {
		return ep.Healthy() && ep.Stats().CatchingUp && ep.Stats().Lag > lagMax
	})
	for range 5 {
		if got := dialAddr(t, p); got != b {
			t.Fatalf("a client went to %s while it catches up, want %s", got, b)
		}
	}

	puts(t, testutil.Client(t, a), 300)
	testutil.WaitFor(t, "the member to catch up", 10*time.Second, func() bool { return !ep.Stats().CatchingUp })
	if lag := ep.Stats().Lag; lag > lagMax {
		t.Fatalf("caught up %d entries behind, lag-max %d", lag, lagMax)
	}
	if got := dialAddr(t, p); got != a {
		t.Fatalf("a client went to %s after the catch-up, want %s", got, a)
	}
}
