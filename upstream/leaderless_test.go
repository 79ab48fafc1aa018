package upstream

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestLeaderlessMemberLosesItsClients is issue 25, item 4, with real
// members: the one member left of a three-member cluster has no leader.
// It gets no new clients, and once it has been without a leader for
// leaderless-max its connections are closed, long before fall checks
// would have marked it down; a member of another cluster takes the
// clients.
func TestLeaderlessMemberLosesItsClients(t *testing.T) {
	lost, other := testutil.Cluster(t, 3), testutil.Cluster(t, 1)
	a, b := lost.Members[0].ClientAddr(), other.ClientAddrs()[0]
	const (
		interval = time.Second
		fall     = 5
		max      = 300 * time.Millisecond
		slack    = time.Second
	)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: interval, Timeout: 500 * time.Millisecond, Fall: fall, Rise: 1, LeaderlessMax: max}
	p := checkedPool(t, Settings{HealthCheck: hc}, a, b)
	ep := endpoint(p, a)
	testutil.WaitFor(t, "a passing check", 10*time.Second, func() bool { ok, _ := ep.Timings().CheckResults(); return ok > 0 })
	conn, got, err := p.Dial(context.Background())
	if err != nil || got != ep {
		t.Fatalf("Dial: %v to %v, want %s", err, got, a)
	}
	defer conn.Close()
	untrack := ep.Track(closerConn{conn})
	defer untrack()

	lost.Stop(1)
	lost.Stop(2)
	testutil.WaitFor(t, "the member to be found without a leader", 20*time.Second, func() bool { return !ep.Stats().LeaderlessSince.IsZero() })
	since := ep.Stats().LeaderlessSince
	_ = conn.SetReadDeadline(time.Now().Add(fall * interval))
	_, err = conn.Read(make([]byte, 1))
	closed := time.Since(since)
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on its connection: %v, want it closed by the gateway", err)
	}
	t.Logf("its connection closed %s after the member was found without a leader (leaderless-max %s, fall × interval %s)", closed, max, fall*interval)
	if closed < max || closed > max+closeSpread+slack {
		t.Errorf("closed after %s, want after leaderless-max %s and within %s", closed, max, max+closeSpread+slack)
	}
	if ep.Healthy() {
		t.Fatal("the leaderless member is still healthy")
	}
	for range 5 {
		if got := dialAddr(t, p); got != b {
			t.Fatalf("a new client went to %s, want %s", got, b)
		}
	}
}
