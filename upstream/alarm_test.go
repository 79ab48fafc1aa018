package upstream

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// poolClient returns an etcd client whose every connection is one the
// pool dials, as a client of the gateway's listener would get.
func poolClient(t *testing.T, p *Pool) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"gateway:2379"},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			conn, _, err := p.Dial(ctx)
			return conn, err
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// checksPassed waits until each of eps passed n more checks.
func checksPassed(t *testing.T, n uint64, eps ...*Endpoint) {
	t.Helper()
	start := map[*Endpoint]uint64{}
	for _, ep := range eps {
		start[ep], _ = ep.Timings().CheckResults()
	}
	testutil.WaitFor(t, "more passing checks", 20*time.Second, func() bool {
		for _, ep := range eps {
			if ok, _ := ep.Timings().CheckResults(); ok < start[ep]+n {
				return false
			}
		}
		return true
	})
}

// TestClusterAlarmKeepsMembersUp is issue 25, item 3, with real members: a
// cluster with a tiny backend quota filled until NOSPACE. The alarm fails
// /health on every member, yet every member stays up for new clients, and
// reads through the pool are served; the pool reports the alarm as
// cluster-wide. A member that fails for a reason of its own (stopped) is
// still marked down. Disarmed, the alarm leaves and keeps nobody out.
func TestClusterAlarmKeepsMembersUp(t *testing.T) {
	c := testutil.ClusterWithOptions(t, 3, etcdtest.Options{QuotaBackendBytes: 96 << 10})
	addrs := c.ClientAddrs()
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 100 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}
	p := checkedPool(t, Settings{HealthCheck: hc, Policy: config.PolicyRoundRobin}, addrs...)
	cli := testutil.Client(t, addrs[0])
	if _, err := cli.Put(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	testutil.FillUntilNoSpace(t, cli)

	testutil.WaitFor(t, "NOSPACE to be found cluster-wide", 10*time.Second, func() bool {
		a := p.ClusterAlarms()
		return len(a) == 1 && a[0].Name == "NOSPACE" && !a[0].Since.IsZero()
	})
	checksPassed(t, 5, p.Endpoints()...)
	for _, ep := range p.Endpoints() {
		if st := ep.Stats(); !ep.Up() || !slices.Equal(st.Alarms, []string{"NOSPACE"}) || st.LocalAlarm {
			t.Fatalf("%s under a cluster-wide alarm: up=%v %+v", ep.Addr(), ep.Up(), st.Readiness)
		}
	}
	reader := poolClient(t, p)
	for range 6 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := reader.Get(ctx, "k")
		cancel()
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("a read through the pool under NOSPACE: %v %v", resp, err)
		}
	}

	c.Stop(2)
	stopped := endpoint(p, addrs[2])
	testutil.WaitFor(t, "the stopped member to be marked down", 10*time.Second, func() bool { return !stopped.Healthy() })
	checksPassed(t, 2, endpoint(p, addrs[0]), endpoint(p, addrs[1]))
	if !endpoint(p, addrs[0]).Up() || !endpoint(p, addrs[1]).Up() || len(p.ClusterAlarms()) != 1 {
		t.Fatalf("with a member stopped: the others up %v %v, cluster alarms %v",
			endpoint(p, addrs[0]).Up(), endpoint(p, addrs[1]).Up(), p.ClusterAlarms())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the alarm to leave", 10*time.Second, func() bool { return len(p.ClusterAlarms()) == 0 })
	checksPassed(t, 3, endpoint(p, addrs[0]), endpoint(p, addrs[1]))
	for _, addr := range addrs[:2] {
		if ep := endpoint(p, addr); !ep.Up() || len(ep.Stats().Alarms) != 0 {
			t.Fatalf("%s after the disarm: up=%v %+v", addr, ep.Up(), ep.Stats().Readiness)
		}
	}
}
