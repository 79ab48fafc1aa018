package upstream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestClientRPCsOfARealMember: while a pool wants them, the etcd check
// reads a real member's client RPCs; a watch shows as one stream open
// while it lasts, puts as unary calls, and the check's own Status calls
// not at all. Members in one process may share their counters, so the
// test looks at differences only.
func TestClientRPCsOfARealMember(t *testing.T) {
	addr := testutil.Cluster(t, 1).ClientAddrs()[0]
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 50 * time.Millisecond, Timeout: time.Second, Fall: 2, Rise: 1}
	ep := endpoint(checkedPool(t, Settings{HealthCheck: hc}, addr), addr)
	testutil.WaitFor(t, "the member's checker", 10*time.Second, func() bool { return ep.check.Load() != nil })
	ep.check.Load().rpcsWanted.extend(time.Now().Add(time.Minute))
	base := freshRPCs(t, ep, time.Now())

	cli := testutil.Client(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli.Watch(ctx, "k")
	waitRPCs(t, ep, "the watch's stream", func(r clientRPCs) bool { return r.streams == base.streams+1 })
	cancel()
	waitRPCs(t, ep, "the watch's end", func(r clientRPCs) bool { return r.streams == base.streams })

	for i := range 5 {
		if _, err := cli.Put(context.Background(), fmt.Sprint("k", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	got := freshRPCs(t, ep, time.Now())
	if calls := got.unary - base.unary; calls < 5 {
		t.Fatalf("%d unary calls counted after 5 puts", calls)
	}
}

// freshRPCs returns the first reading of ep's client RPCs made after
// after.
func freshRPCs(t *testing.T, ep *Endpoint, after time.Time) clientRPCs {
	t.Helper()
	var r clientRPCs
	testutil.WaitFor(t, "a reading of the member's client RPCs", 10*time.Second, func() bool {
		f := ep.facts.Load()
		if f == nil || f.metrics != present || !f.rpcs.at.After(after) {
			return false
		}
		r = f.rpcs
		return true
	})
	return r
}

// waitRPCs waits until a reading of ep's client RPCs satisfies cond.
func waitRPCs(t *testing.T, ep *Endpoint, what string, cond func(clientRPCs) bool) {
	t.Helper()
	testutil.WaitFor(t, what, 10*time.Second, func() bool {
		f := ep.facts.Load()
		return f != nil && f.metrics == present && cond(f.rpcs)
	})
}
