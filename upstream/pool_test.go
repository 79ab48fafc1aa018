package upstream

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// server is a loopback TCP server that accepts and holds connections.
type server struct {
	ln    net.Listener
	addr  string
	conns chan net.Conn
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{conns: make(chan net.Conn, 1024)}
	s.listen(t, "127.0.0.1:0")
	s.addr = s.ln.Addr().String()
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() { _ = s.ln.Close() }

// restart listens again on the server's address.
func (s *server) restart(t *testing.T) {
	t.Helper()
	s.listen(t, s.addr)
}

// listen listens on addr and hands every connection to s.conns.
func (s *server) listen(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
		}
	}()
}

// ordered picks the first candidate, so tests control the order of tries.
type ordered struct{}

func (ordered) Pick(c []*Endpoint) *Endpoint { return c[0] }

func newTestPool(t *testing.T, s Settings, addrs ...string) *Pool {
	t.Helper()
	p := NewPool(Options{Settings: s, Policy: ordered{}})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static(addrs))
	return p
}

func endpoint(p *Pool, addr string) *Endpoint {
	for _, ep := range p.Endpoints() {
		if ep.Addr() == addr {
			return ep
		}
	}
	return nil
}

func TestDialFailsOverAndHidesTheFailure(t *testing.T) {
	dead, live := testutil.RefusingAddr(t), newServer(t)
	p := newTestPool(t, Settings{RetryDelay: time.Hour}, dead, live.addr)

	conn, ep, err := p.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if ep.Addr() != live.addr {
		t.Fatalf("dialled %s, want the live endpoint %s", ep.Addr(), live.addr)
	}
	if d := endpoint(p, dead); d.Stats().Active || d.Stats().DialErrors != 1 {
		t.Fatalf("dead endpoint: active=%v dialErrors=%d, want inactive with 1 error", d.Stats().Active, d.Stats().DialErrors)
	}
	// The inactive endpoint is not tried again for the next client.
	conn2, ep2, err := p.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if ep2.Addr() != live.addr || endpoint(p, dead).Stats().DialErrors != 1 {
		t.Fatalf("second dial went to %s with %d errors on the dead endpoint", ep2.Addr(), endpoint(p, dead).Stats().DialErrors)
	}
	// Only the first client was failed over.
	if n := p.Stats().Failovers; n != 1 {
		t.Fatalf("Stats().Failovers = %d, want 1", n)
	}
}

func TestDialTimeoutSkipsBlackholedEndpoint(t *testing.T) {
	hole, live := testutil.Blackhole(t), newServer(t)
	const timeout = 200 * time.Millisecond
	p := newTestPool(t, Settings{DialTimeout: timeout, RetryDelay: time.Hour}, hole, live.addr)

	start := time.Now()
	conn, ep, err := p.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if ep.Addr() != live.addr {
		t.Fatalf("dialled %s, want %s", ep.Addr(), live.addr)
	}
	// Bounded, not timed: without a dial timeout this would hang for the
	// kernel's connect timeout (minutes).
	if elapsed := time.Since(start); elapsed > 10*timeout {
		t.Fatalf("failover took %s with a dial timeout of %s", elapsed, timeout)
	}
	if endpoint(p, hole).Stats().Active {
		t.Fatal("blackholed endpoint still active")
	}
}

func TestInactiveEndpointReprobedAfterRetryDelay(t *testing.T) {
	s := newServer(t)
	other := newServer(t)
	p := newTestPool(t, Settings{RetryDelay: 50 * time.Millisecond}, s.addr, other.addr)
	s.stop()
	ep := dialOnce(t, p)
	if ep.Addr() != other.addr || endpoint(p, s.addr).Stats().Active {
		t.Fatalf("want failover to %s with %s inactive", other.addr, s.addr)
	}
	s.restart(t)
	testutil.WaitFor(t, "re-activation by the probe", 5*time.Second, func() bool { return endpoint(p, s.addr).Stats().Active })
	ep = dialOnce(t, p)
	if ep.Addr() != s.addr {
		t.Fatalf("after re-activation dialled %s, want %s first", ep.Addr(), s.addr)
	}
}

func TestAllInactiveStillTriesEveryEndpoint(t *testing.T) {
	a, b := newServer(t), newServer(t)
	p := newTestPool(t, Settings{RetryDelay: time.Hour}, a.addr, b.addr)
	a.stop()
	b.stop()
	if _, _, err := p.Dial(context.Background()); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("Dial with every endpoint down: err=%v, want ErrNoEndpoint", err)
	}
	if n := p.Stats().Failovers; n != 0 {
		t.Fatalf("a client that got no endpoint counted as %d failovers", n)
	}
	for _, ep := range p.Endpoints() {
		if ep.Stats().Active {
			t.Fatalf("%s still active", ep.Addr())
		}
	}
	// b comes back: the next client gets it at once, not after an hour.
	b.restart(t)
	conn, ep, err := p.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial after a member came back: %v", err)
	}
	conn.Close()
	if ep.Addr() != b.addr || !ep.Stats().Active {
		t.Fatalf("got %s active=%v, want %s re-activated", ep.Addr(), ep.Stats().Active, b.addr)
	}
	if n := p.Stats().Failovers; n != 1 {
		t.Fatalf("Stats().Failovers = %d after a dial to a failed, then b: want 1", n)
	}
}

func TestUpdateKeepsStateOfStayingEndpoints(t *testing.T) {
	a, b, c := testutil.RefusingAddr(t), newServer(t), newServer(t)
	p := newTestPool(t, Settings{RetryDelay: time.Hour}, a, b.addr)
	conn, epB, err := p.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	untrack := epB.Track(closerConn{conn})
	epA := endpoint(p, a)

	added, removed := p.UpdateFrom("config", resolver.Static([]string{a, c.addr}))
	if len(added) != 1 || added[0] != c.addr || len(removed) != 1 || removed[0] != b.addr {
		t.Fatalf("Update: added=%v removed=%v", added, removed)
	}
	if endpoint(p, a) != epA || epA.Stats().Active || epA.Stats().DialErrors != 1 {
		t.Fatal("staying endpoint lost its object or state")
	}
	if !epB.Stats().Removed || epB.OpenConns() != 1 {
		t.Fatalf("removed endpoint: removed=%v open=%d; keep policy must leave its connection", epB.Stats().Removed, epB.OpenConns())
	}
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatalf("kept connection broken: %v", err)
	}
	untrack()
	if epB.OpenConns() != 0 {
		t.Fatal("untrack did not decrement")
	}
	conn2, ep, err := p.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn2.Close()
	if ep.Addr() != c.addr {
		t.Fatalf("new connection went to %s, want the added %s", ep.Addr(), c.addr)
	}
}

func TestRemovedEndpointConnectionsClosedByPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy config.OnRemoved
		drain  time.Duration
		closed bool
	}{
		{config.RemovedKeep, 0, false},
		{config.RemovedClose, 0, true},
		{config.RemovedDrain, 100 * time.Millisecond, true},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			s, other := newServer(t), newServer(t)
			p := newTestPool(t, Settings{RetryDelay: time.Hour, OnEndpointRemoved: tc.policy, DrainTimeout: tc.drain}, s.addr)
			conn, ep, err := p.Dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			peer := <-s.conns
			defer peer.Close()
			ep.Track(closerConn{conn})
			p.UpdateFrom("config", resolver.Static([]string{other.addr}))

			_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = peer.Read(make([]byte, 1))
			gotClosed := err != nil && !isTimeout(err)
			if gotClosed != tc.closed {
				t.Fatalf("policy %s: connection closed=%v (read err %v), want %v", tc.policy, gotClosed, err, tc.closed)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestPriorityClassAndWeights(t *testing.T) {
	p := NewPool(Options{})
	defer p.Close()
	p.UpdateFrom("config", []resolver.Endpoint{
		{Addr: "a:1", Priority: 0, Weight: 60},
		{Addr: "b:1", Priority: 0, Weight: 30},
		{Addr: "c:1", Priority: 0, Weight: 10},
		{Addr: "d:1", Priority: 1, Weight: 100},
	})
	const n = 10000
	counts := map[string]int{}
	for range n {
		counts[p.pick(p.Endpoints(), nil, levelUp).Addr()]++
		p.policy.Load().Policy.(*StickyRandom).current.Store(nil) // measure the random pick, not stickiness
	}
	if counts["d:1"] != 0 {
		t.Fatalf("lower-priority class got %d picks while the top class is active", counts["d:1"])
	}
	for addr, w := range map[string]float64{"a:1": .6, "b:1": .3, "c:1": .1} {
		if got := float64(counts[addr]) / n; got < w-0.03 || got > w+0.03 {
			t.Errorf("%s: share %.3f, want %.2f±0.03", addr, got, w)
		}
	}
	// The top class down: the next class takes over.
	for _, ep := range p.Endpoints()[:3] {
		ep.active.Store(false)
	}
	if got := p.pick(p.Endpoints(), nil, levelUp).Addr(); got != "d:1" {
		t.Fatalf("with the top class inactive picked %s, want d:1", got)
	}
}

func TestEqualWeightsReachEveryRecord(t *testing.T) {
	// etcd's gateway never picks the last of equal-weight records.
	eps := []*Endpoint{
		newEndpoint(resolver.Endpoint{Addr: "a:1", Weight: 5}),
		newEndpoint(resolver.Endpoint{Addr: "b:1", Weight: 5}),
		newEndpoint(resolver.Endpoint{Addr: "c:1", Weight: 5}),
	}
	counts := map[*Endpoint]int{}
	for range 3000 {
		counts[weightedRandom(eps)]++
	}
	for _, ep := range eps {
		if counts[ep] < 800 {
			t.Errorf("%s picked %d of 3000 times, want about 1000", ep.Addr(), counts[ep])
		}
	}
}

func TestZeroWeightGetsASmallShare(t *testing.T) {
	eps := []*Endpoint{
		newEndpoint(resolver.Endpoint{Addr: "a:1", Weight: 1}),
		newEndpoint(resolver.Endpoint{Addr: "z:1", Weight: 0}),
	}
	zero := 0
	const n = 100000
	for range n {
		if weightedRandom(eps).Addr() == "z:1" {
			zero++
		}
	}
	if zero == 0 || zero > n/20 {
		t.Fatalf("weight-0 record picked %d of %d times, want a small non-zero share", zero, n)
	}
}

func TestStickyRandomKeepsItsPick(t *testing.T) {
	a, b, c := newServer(t), newServer(t), newServer(t)
	p := NewPool(Options{Settings: Settings{RetryDelay: time.Hour}})
	defer p.Close()
	p.UpdateFrom("config", resolver.Static([]string{a.addr, b.addr, c.addr}))
	var first string
	for i := range 20 {
		ep := dialOnce(t, p)
		if i == 0 {
			first = ep.Addr()
		} else if ep.Addr() != first {
			t.Fatalf("dial %d went to %s, want sticky %s", i, ep.Addr(), first)
		}
	}
	// Its endpoint removed by an update: another is picked and kept.
	var rest []string
	for _, addr := range []string{a.addr, b.addr, c.addr} {
		if addr != first {
			rest = append(rest, addr)
		}
	}
	p.UpdateFrom("config", resolver.Static(rest))
	ep := dialOnce(t, p)
	if ep.Addr() == first {
		t.Fatal("picked a removed endpoint")
	}
}

func TestEmptyPool(t *testing.T) {
	p := NewPool(Options{})
	defer p.Close()
	if _, _, err := p.Dial(context.Background()); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("err=%v, want ErrNoEndpoint", err)
	}
}

// streakOf returns the streak of ep's checker (n > 0: n successes in a
// row, n < 0: -n failures in a row), or 0 when none runs.
func streakOf(ep *Endpoint) int64 {
	if c := ep.check.Load(); c != nil {
		return int64(c.streakNow())
	}
	return 0
}
