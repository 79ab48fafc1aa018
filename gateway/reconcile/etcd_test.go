package reconcile

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

func listenerConfig(name string, endpoints []string) config.Listener {
	return config.Listener{
		Name:              name,
		ListenAddr:        "127.0.0.1:0",
		Endpoints:         endpoints,
		RetryDelay:        time.Hour,
		DialTimeout:       time.Second,
		OnEndpointRemoved: config.RemovedKeep,
		DrainTimeout:      time.Second,
	}
}

func startGroup(t *testing.T, ls ...config.Listener) *Group {
	t.Helper()
	g := newGroup(t, testutil.Logger(t))
	mustApply(t, g, ls...)
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	return g
}

// newGroup returns a group with a forwarder of its own, closed at the end
// of the test, after the group's Shutdown (a cleanup registered later runs
// first).
func newGroup(t *testing.T, log logrus.FieldLogger) *Group {
	t.Helper()
	fwd, err := forward.NewForwarder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	return NewGroup(log, fwd, nil)
}

// mustApply applies a snapshot of ls, with a one-second shutdown
// timeout, to g.
func mustApply(t *testing.T, g *Group, ls ...config.Listener) {
	t.Helper()
	if _, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, Listeners: ls}); err != nil {
		t.Fatal(err)
	}
}

func gatewayAddr(t *testing.T, g *Group, name string) string {
	t.Helper()
	l, ok := g.Listeners()[name]
	if !ok {
		t.Fatalf("no listener %q", name)
	}
	return l.Addr().String()
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// putThenGet writes key through cli and reads the same value back.
func putThenGet(t *testing.T, ctx context.Context, cli *clientv3.Client, key, value string) {
	t.Helper()
	if _, err := cli.Put(ctx, key, value); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != value {
		t.Fatalf("get: %v %v", resp, err)
	}
}

func TestPutGetWatchThroughListener(t *testing.T) {
	t.Parallel()
	c := testutil.Cluster(t, 1)
	g := startGroup(t, listenerConfig("main", c.ClientAddrs()))
	cli := testutil.Client(t, gatewayAddr(t, g, "main"))
	ctx := ctxTimeout(t, 20*time.Second)

	wch := cli.Watch(ctx, "w/", clientv3.WithPrefix())
	putThenGet(t, ctx, cli, "foo", "bar")
	for i := range 3 {
		if _, err := cli.Put(ctx, fmt.Sprintf("w/%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < 3 {
		select {
		case wr := <-wch:
			if err := wr.Err(); err != nil {
				t.Fatal(err)
			}
			got += len(wr.Events)
		case <-ctx.Done():
			t.Fatalf("watch saw %d of 3 events", got)
		}
	}
	if l := g.Listeners()["main"]; l.OpenConns() < 1 {
		t.Fatalf("listener tracks %d open connections, want at least 1", l.OpenConns())
	}
}

func TestTwoListenersAreIsolated(t *testing.T) {
	t.Parallel()
	a, b := testutil.Cluster(t, 1), testutil.Cluster(t, 1)
	g := startGroup(t, listenerConfig("a", a.ClientAddrs()), listenerConfig("b", b.ClientAddrs()))
	ca, cb := testutil.Client(t, gatewayAddr(t, g, "a")), testutil.Client(t, gatewayAddr(t, g, "b"))
	ctx := ctxTimeout(t, 20*time.Second)
	if _, err := ca.Put(ctx, "only-in-a", "1"); err != nil {
		t.Fatal(err)
	}
	resp, err := cb.Get(ctx, "only-in-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatal("a key put through listener a is visible through listener b")
	}
	resp, err = ca.Get(ctx, "only-in-a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("key not visible through its own listener: %v %v", resp, err)
	}
}

// usedMember returns the index of the member the listener's pool sent
// connections to.
func usedMember(t *testing.T, g *Group, name string, c *etcdtest.Cluster) int {
	t.Helper()
	for _, ep := range g.Listeners()[name].Pool().Endpoints() {
		if ep.Stats().TotalConns > 0 {
			for i, m := range c.Members {
				if m.ClientAddr() == ep.Addr() {
					return i
				}
			}
		}
	}
	t.Fatal("no endpoint has been used")
	return -1
}

func TestFailoverWhenTheUsedMemberStops(t *testing.T) {
	t.Parallel()
	c := testutil.Cluster(t, 3)
	lc := listenerConfig("main", c.ClientAddrs())
	lc.RetryDelay = 200 * time.Millisecond
	g := startGroup(t, lc)
	addr := gatewayAddr(t, g, "main")
	ctx := ctxTimeout(t, 60*time.Second)

	if _, err := testutil.Client(t, addr).Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	used := usedMember(t, g, "main", c)
	c.Stop(used)

	// A new client through the gateway succeeds: the failed dial is hidden.
	resp, err := testutil.Client(t, addr).Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("get through the gateway after the member stopped: %v %v", resp, err)
	}
	ep := endpointOf(g, "main", c.Members[used].ClientAddr())
	if ep.Stats().Active {
		t.Fatal("the stopped member's endpoint is still active")
	}
	// Started again, it is re-activated by the probe after retry-delay.
	if err := c.Restart(used); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "re-activation of the restarted member", 10*time.Second, func() bool { return ep.Stats().Active })
}

func TestEveryMemberDownThenOneBack(t *testing.T) {
	t.Parallel()
	c := testutil.Cluster(t, 1)
	g := startGroup(t, listenerConfig("main", c.ClientAddrs())) // retry-delay 1h
	addr := gatewayAddr(t, g, "main")
	ctx := ctxTimeout(t, 60*time.Second)
	if _, err := testutil.Client(t, addr).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err := testutil.Client(t, addr).Get(short, "k")
	cancel()
	if err == nil {
		t.Fatal("get succeeded with every member down")
	}
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	// Back at once, long before the one-hour retry delay.
	resp, err := testutil.Client(t, addr).Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get after the member came back: %v %v", resp, err)
	}
}

func endpointOf(g *Group, name, addr string) *upstream.Endpoint {
	for _, ep := range g.Listeners()[name].Pool().Endpoints() {
		if ep.Addr() == addr {
			return ep
		}
	}
	return nil
}
