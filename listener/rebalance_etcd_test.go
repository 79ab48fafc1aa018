package listener

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// These tests run real etcd members in-process, and clientv3 clients
// through a listener.

// rollingClients is how many clients a rolling restart test runs: each
// keeps one connection, as etcd clients do.
const rollingClients = 24

// TestRollingRestartRebalances restarts each member of a cluster in turn
// under 24 clients that each do a put or a get every 20 to 100 ms, and
// checks that within 30 s of the last member's return no member holds
// more than 1.25 times the mean. Without rebalancing, the last member to
// return keeps none. Of the client requests that failed it allows those
// in flight while a member was stopping or stopped (its connections die
// with it, and etcd may time out a request across the leader's move), and
// no other: only a move can have failed those, and a move by GOAWAY fails
// none (docs/design.md).
func TestRollingRestartRebalances(t *testing.T) {
	c := testutil.Cluster(t, 3)
	for _, pol := range []config.Policy{config.PolicyLeastConnections, config.PolicyRoundRobin} {
		t.Run(string(pol), func(t *testing.T) { rollingRestart(t, c, pol) })
	}
}

func rollingRestart(t *testing.T, c *etcdtest.Cluster, pol config.Policy) {
	l, pool := etcdListener(t, c, pol)
	w := startWorkload(t, l.Addr().String(), rollingClients)
	testutil.WaitFor(t, "every client connected", testTimeout, func() bool { return l.OpenConns() == rollingClients })
	var stops []window
	for i := range c.Members {
		stops = append(stops, restartMember(t, c, pool, i))
	}
	returned := time.Now()
	testutil.WaitFor(t, "max/mean ≤ 1.25", 30*time.Second, func() bool { return spreadOf(pool) <= 1.25 })
	t.Logf("%s: max/mean %.2f %s after the last return: open %v, moves %v", pol, spreadOf(pool), time.Since(returned).Round(time.Millisecond), openConns(pool), moves(pool))
	n, failed := w.stop()
	var outside []failure
	for _, f := range failed {
		if !f.within(stops) {
			outside = append(outside, f)
		}
	}
	t.Logf("%s: %d client requests; %d failed while a member was stopped, %d outside a stop: %v", pol, n, len(failed)-len(outside), len(outside), failed)
	if len(outside) > 0 {
		t.Errorf("%s: %d client requests failed outside a member's stop, which only a move can fail: %v", pol, len(outside), outside)
	}
}

// window is a stretch of time: a member's stop until its return.
type window struct{ from, to time.Time }

// failure is a failed client request and when it was in flight.
type failure struct {
	began, ended time.Time
	err          error
}

func (f failure) String() string { return f.began.Format("15:04:05.000") + " " + f.err.Error() }

// within reports whether f was in flight during one of ws.
func (f failure) within(ws []window) bool {
	for _, w := range ws {
		if !f.began.After(w.to) && !f.ended.Before(w.from) {
			return true
		}
	}
	return false
}

// etcdListener serves a listener in front of c's members, with pol,
// rebalancing, a short slow start and fast etcd checks.
func etcdListener(t *testing.T, c *etcdtest.Cluster, pol config.Policy) (*Listener, *upstream.Pool) {
	t.Helper()
	hc := upstream.HealthCheck{Type: config.CheckEtcd, Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond, Fall: 1, Rise: 1}
	// Unhealthy members' connections are kept: under load a check of a
	// member that is up times out now and then, and on-unhealthy close
	// would fail requests no move and no stop fails. A stopped member
	// closes its connections itself.
	s := upstream.Settings{Policy: pol, Rebalance: true, SlowStart: 2 * time.Second, HealthCheck: hc, OnUnhealthy: config.UnhealthyKeep}
	return settingsListener(t, c, s)
}

// settingsListener serves a listener in front of c's members, with s.
func settingsListener(t *testing.T, c *etcdtest.Cluster, s upstream.Settings) (*Listener, *upstream.Pool) {
	t.Helper()
	return poolListener(t, s, c.ClientAddrs()...)
}

// poolListener serves a listener in front of addrs, with s: members, or
// relays in front of them.
func poolListener(t *testing.T, s upstream.Settings, addrs ...string) (*Listener, *upstream.Pool) {
	t.Helper()
	pool := upstream.NewPool(upstream.Options{Settings: s, Log: testutil.Logger(t)})
	t.Cleanup(pool.Close)
	pool.UpdateFrom("config", resolver.Static(addrs))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := New("test", ln, pool, Options{Forwarder: newForwarder(t), Log: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	t.Cleanup(func() { _ = l.Close() })
	return l, pool
}

// restartMember stops member i, waits for the pool to see it down and
// its clients gone, starts it again and waits for the pool to take it
// back; it returns when the member was stopping or stopped.
func restartMember(t *testing.T, c *etcdtest.Cluster, pool *upstream.Pool, i int) window {
	t.Helper()
	ep := poolEndpoint(t, pool, c.Members[i].ClientAddr())
	stop := window{from: time.Now()}
	c.Stop(i)
	testutil.WaitFor(t, fmt.Sprintf("member %d down and without clients", i), testTimeout, func() bool {
		return !ep.Up() && ep.OpenConns() == 0
	})
	if err := c.Restart(i); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, fmt.Sprintf("member %d back", i), testTimeout, ep.Up)
	stop.to = time.Now()
	return stop
}

func poolEndpoint(t *testing.T, pool *upstream.Pool, addr string) *upstream.Endpoint {
	t.Helper()
	for _, ep := range pool.Endpoints() {
		if ep.Addr() == addr {
			return ep
		}
	}
	t.Fatalf("no endpoint %s", addr)
	return nil
}

// spreadOf is the pool's max/mean of open connections.
func spreadOf(pool *upstream.Pool) float64 {
	var total, most int64
	eps := pool.Endpoints()
	for _, ep := range eps {
		n := ep.OpenConns()
		total += n
		most = max(most, n)
	}
	if total == 0 {
		return 0
	}
	return float64(most) * float64(len(eps)) / float64(total)
}

func openConns(pool *upstream.Pool) []int64 {
	var out []int64
	for _, ep := range pool.Endpoints() {
		out = append(out, ep.OpenConns())
	}
	return out
}

func moves(pool *upstream.Pool) []upstream.MoveCounts {
	var out []upstream.MoveCounts
	for _, ep := range pool.Endpoints() {
		out = append(out, ep.Stats().Moves)
	}
	return out
}

// workload is clients doing puts and gets, each paced, counting what
// failed.
type workload struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ops    atomic.Int64
	mu     sync.Mutex
	failed []failure
}

func startWorkload(t *testing.T, addr string, clients int) *workload {
	ctx, cancel := context.WithCancel(context.Background())
	w := &workload{cancel: cancel}
	t.Cleanup(func() { w.stop() })
	for i := range clients {
		cli := testutil.Client(t, addr)
		w.wg.Add(1)
		go w.run(ctx, cli.KV, i)
	}
	return w
}

// run does a put or a get every 20 to 100 ms until ctx ends; a request
// is never cut by ctx, whose end is not the request's failure.
func (w *workload) run(ctx context.Context, kv clientv3.KV, i int) {
	defer w.wg.Done()
	key := fmt.Sprintf("client-%d", i)
	for n := 0; ctx.Err() == nil; n++ {
		began := time.Now()
		if err := op(kv, key, n); err != nil {
			w.mu.Lock()
			w.failed = append(w.failed, failure{began: began, ended: time.Now(), err: fmt.Errorf("client %d, request %d: %w", i, n, err)})
			w.mu.Unlock()
		}
		w.ops.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(20+rand.IntN(80)) * time.Millisecond):
		}
	}
}

// op is request n of a client: puts and gets in turn.
func op(kv clientv3.KV, key string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if n%2 == 0 {
		_, err = kv.Put(ctx, key, fmt.Sprint(n))
	} else {
		_, err = kv.Get(ctx, key)
	}
	return err
}

// stop ends the workload and returns how many requests it made and
// those that failed.
func (w *workload) stop() (int64, []failure) {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ops.Load(), w.failed
}
