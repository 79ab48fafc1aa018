package upstream

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// checkedPool returns a pool over addrs, in that order of preference (the
// ordered policy), running hc.
func checkedPool(t *testing.T, s Settings, addrs ...string) *Pool {
	t.Helper()
	if s.RetryDelay == 0 {
		s.RetryDelay = time.Hour
	}
	return newTestPool(t, s, addrs...)
}

// dialAddr dials the pool once and returns the endpoint it reached.
func dialAddr(t *testing.T, p *Pool) string {
	t.Helper()
	return dialOnce(t, p).Addr()
}

// dialOnce dials the pool once, closes the connection and returns the
// endpoint it reached.
func dialOnce(t *testing.T, p *Pool) *Endpoint {
	t.Helper()
	conn, ep, err := p.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	_ = conn.Close()
	return ep
}

func TestEtcdCheckFallAndRise(t *testing.T) {
	bad, good := newSteppedEtcd(t), newFakeEtcd(t, false)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: time.Millisecond, Timeout: 5 * time.Second, Fall: 3, Rise: 2}
	p := checkedPool(t, Settings{HealthCheck: hc}, bad.addr, good.addr)
	ep := endpoint(p, bad.addr)
	waitStreak := func(want int64) {
		t.Helper()
		testutil.WaitFor(t, "the check result to be counted", 5*time.Second, func() bool { return streakOf(ep) == want })
	}

	bad.step(t, answerHealthy)
	waitStreak(1)
	bad.step(t, answerNoLeader)
	bad.step(t, answerNoLeader)
	waitStreak(-2)
	if !ep.Healthy() || dialAddr(t, p) != bad.addr {
		t.Fatalf("down after 2 failures with fall 3: healthy=%v", ep.Healthy())
	}
	bad.step(t, answerNoLeader)
	testutil.WaitFor(t, "the endpoint to go down after 3 failures", 5*time.Second, func() bool { return !ep.Healthy() })
	if got := ep.LastCheckError(); !strings.Contains(got, "503") || !strings.Contains(got, "RAFT NO LEADER") {
		t.Errorf("LastCheckError = %q, want the status and etcd's reason", got)
	}
	if got := dialAddr(t, p); got != good.addr {
		t.Fatalf("a new client went to %s, want the healthy %s", got, good.addr)
	}
	if !ep.Stats().Active {
		t.Fatal("an unhealthy endpoint must stay active: its dials work")
	}

	bad.step(t, answerHealthy)
	waitStreak(1)
	if ep.Healthy() || dialAddr(t, p) != good.addr {
		t.Fatal("up after 1 success with rise 2")
	}
	bad.step(t, answerHealthy)
	testutil.WaitFor(t, "the endpoint to come back after 2 successes", 5*time.Second, ep.Healthy)
	if ep.LastCheckError() != "" {
		t.Errorf("LastCheckError after a success = %q", ep.LastCheckError())
	}
	if got := dialAddr(t, p); got != bad.addr {
		t.Fatalf("after it came back a new client went to %s, want %s", got, bad.addr)
	}
}

func TestCheckIntervalHonoured(t *testing.T) {
	f := newFakeEtcd(t, false)
	const interval = 60 * time.Millisecond
	checkedPool(t, Settings{HealthCheck: HealthCheck{Type: config.CheckEtcd, Interval: interval, Timeout: time.Second}}, f.addr)
	testutil.WaitFor(t, "6 checks", 10*time.Second, func() bool { return f.checks() >= 6 })
	at := f.arrivalTimes()[:6]
	for i := 1; i < len(at); i++ {
		// The server sees the request a little after the check starts;
		// allow that much jitter, never a check that comes early.
		if gap := at[i].Sub(at[i-1]); gap < interval-15*time.Millisecond {
			t.Errorf("check %d came %s after the previous one, want about %s", i, gap, interval)
		}
	}
	if avg := at[5].Sub(at[0]) / 5; avg > interval+50*time.Millisecond {
		t.Errorf("checks every %s on average, want about %s", avg, interval)
	}
}

func TestCheckTimeoutHonoured(t *testing.T) {
	f := newFakeEtcd(t, false)
	f.answer.Store(answerHang)
	const timeout = 80 * time.Millisecond
	p := checkedPool(t, Settings{HealthCheck: HealthCheck{Type: config.CheckEtcd, Interval: time.Hour, Timeout: timeout, Fall: 1}}, f.addr)
	ep := endpoint(p, f.addr)
	testutil.WaitFor(t, "the hung check to fail", 5*time.Second, func() bool { return !ep.Healthy() })
	if msg := ep.LastCheckError(); !strings.Contains(msg, "deadline exceeded") {
		t.Errorf("LastCheckError = %q, want a timeout", msg)
	}
	testutil.WaitFor(t, "the server to see the client leave", 5*time.Second, func() bool { return len(f.gaveUpAfter()) == 1 })
	if d := f.gaveUpAfter()[0]; d < timeout-10*time.Millisecond || d > timeout+400*time.Millisecond {
		t.Errorf("the check gave up after %s, want about %s", d, timeout)
	}
}

func TestTCPCheck(t *testing.T) {
	s, other := newServer(t), newServer(t)
	hc := HealthCheck{Type: config.CheckTCP, Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 2, Rise: 2}
	p := checkedPool(t, Settings{HealthCheck: hc}, s.addr, other.addr)
	ep := endpoint(p, s.addr)
	testutil.WaitFor(t, "a run of successful tcp checks", 5*time.Second, func() bool { return streakOf(ep) >= 2 })
	s.stop()
	testutil.WaitFor(t, "the closed port to be marked down", 5*time.Second, func() bool { return !ep.Healthy() })
	if msg := ep.LastCheckError(); !strings.Contains(msg, "connection refused") {
		t.Errorf("LastCheckError = %q, want the refused connect", msg)
	}
	if ep.Stats().DialErrors != 0 {
		t.Fatal("no client dial was made, yet dial errors were counted")
	}
	if got := dialAddr(t, p); got != other.addr {
		t.Fatalf("new client went to %s, want %s", got, other.addr)
	}
	s.restart(t)
	testutil.WaitFor(t, "the port back to be marked up", 5*time.Second, ep.Healthy)
	if got := dialAddr(t, p); got != s.addr {
		t.Fatalf("new client went to %s, want %s again", got, s.addr)
	}
}

func TestFailedDialNeedsRiseChecksToComeBack(t *testing.T) {
	f := newSteppedEtcd(t)
	other := newFakeEtcd(t, false)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: time.Millisecond, Timeout: 5 * time.Second, Fall: 2, Rise: 2}
	p := checkedPool(t, Settings{HealthCheck: hc}, f.addr, other.addr)
	ep := endpoint(p, f.addr)
	for range 3 {
		f.step(t, answerHealthy)
	}
	testutil.WaitFor(t, "3 successes", 5*time.Second, func() bool { return streakOf(ep) == 3 })

	// A failed dial (passive) marks it down at once, whatever the checks
	// said, and starts no retry-delay probe: the checks bring it back.
	p.markDown(ep, errors.New("connection refused"))
	if ep.Up() || ep.Stats().Active || !ep.Healthy() {
		t.Fatalf("after a failed dial: up=%v active=%v healthy=%v", ep.Up(), ep.Stats().Active, ep.Healthy())
	}
	if ep.probing.Load() {
		t.Fatal("a retry-delay probe started although health checks run")
	}
	if got := dialAddr(t, p); got != other.addr {
		t.Fatalf("new client went to %s", got)
	}
	f.step(t, answerHealthy)
	testutil.WaitFor(t, "1 success", 5*time.Second, func() bool { return streakOf(ep) == 1 })
	if ep.Stats().Active {
		t.Fatal("re-activated after 1 success with rise 2")
	}
	f.step(t, answerHealthy)
	testutil.WaitFor(t, "re-activation after 2 successes", 5*time.Second, func() bool { return ep.Stats().Active })
	if !ep.Up() || dialAddr(t, p) != f.addr {
		t.Fatal("not used again after it came back")
	}
}

func TestEveryEndpointDownClientsStillTried(t *testing.T) {
	a, b := newFakeEtcd(t, false), newFakeEtcd(t, false)
	a.answer.Store(answerNoLeader)
	b.answer.Store(answerNoLeader)
	dead := testutil.RefusingAddr(t)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 1}
	p := checkedPool(t, Settings{HealthCheck: hc}, dead, a.addr, b.addr)
	for _, addr := range []string{dead, a.addr, b.addr} {
		ep := endpoint(p, addr)
		testutil.WaitFor(t, addr+" to be marked unhealthy", 5*time.Second, func() bool { return !ep.Healthy() })
	}
	// Every endpoint is down: each new client is still tried, first on the
	// unhealthy ones whose dials work, then on every other. The dead one
	// is tried by the first client only: its failed dial deactivates it.
	for range 3 {
		got := dialAddr(t, p)
		if got != a.addr && got != b.addr {
			t.Fatalf("with every endpoint unhealthy a client went to %s", got)
		}
	}
	if n := endpoint(p, dead).Stats().DialErrors; n != 1 {
		t.Fatalf("the dead endpoint was dialled %d times for 3 clients, want 1", n)
	}
	a.CloseClientConnections()
	a.Close()
	b.CloseClientConnections()
	b.Close()
	_, _, err := p.Dial(context.Background())
	if !errors.Is(err, ErrNoEndpoint) || !strings.Contains(err.Error(), "tried 3 endpoints") {
		t.Fatalf("every endpoint unreachable: err=%v, want ErrNoEndpoint after trying all 3", err)
	}
}

func TestOnUnhealthy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policy     config.OnUnhealthy
		othersDown bool // the other endpoint is unhealthy already
		wantClosed bool
	}{
		{"keep", config.UnhealthyKeep, false, false},
		{"close", config.UnhealthyClose, false, true},
		{"close by default", "", false, true},
		{"close with no healthy endpoint left", config.UnhealthyClose, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeEtcd(t, false), newFakeEtcd(t, false)
			hc := HealthCheck{Type: config.CheckEtcd, Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 1}
			p := checkedPool(t, Settings{HealthCheck: hc, OnUnhealthy: tc.policy}, a.addr, b.addr)
			if tc.othersDown {
				b.answer.Store(answerNoLeader)
				testutil.WaitFor(t, "b to go unhealthy", 5*time.Second, func() bool { return !endpoint(p, b.addr).Healthy() })
			}
			conn, ep, err := p.Dial(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if ep.Addr() != a.addr {
				t.Fatalf("dialled %s, want %s", ep.Addr(), a.addr)
			}
			ep.Track(closerConn{conn})
			a.answer.Store(answerNoLeader)
			testutil.WaitFor(t, "the endpoint to go unhealthy", 5*time.Second, func() bool { return !ep.Healthy() })

			// A close is waited for long (a loaded machine may be slow to
			// deliver it); its absence only past the spread of closes.
			wait := closeSpread + 200*time.Millisecond
			if tc.wantClosed {
				wait = 10 * time.Second
			}
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			_, err = conn.Read(make([]byte, 1))
			if closed := errors.Is(err, net.ErrClosed); closed != tc.wantClosed {
				t.Fatalf("on-unhealthy %s: connection closed=%v (read: %v), want %v", tc.policy, closed, err, tc.wantClosed)
			}
		})
	}
}

func TestChecksFollowUpdates(t *testing.T) {
	a, b := newFakeEtcd(t, false), newFakeEtcd(t, false)
	a.answer.Store(answerNoLeader)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 5 * time.Millisecond, Timeout: time.Second, Fall: 1}
	p := checkedPool(t, Settings{HealthCheck: hc}, a.addr)
	epA := endpoint(p, a.addr)
	testutil.WaitFor(t, "a to go unhealthy", 5*time.Second, func() bool { return !epA.Healthy() })

	// An added endpoint gets checked; the one that stays keeps its state.
	p.UpdateFrom("config", resolver.Static([]string{a.addr, b.addr}))
	testutil.WaitFor(t, "b to be checked", 5*time.Second, func() bool { return b.checks() >= 1 })
	if endpoint(p, a.addr) != epA || epA.Healthy() {
		t.Fatal("a lost its object or its unhealthy state in the update")
	}

	// A removed endpoint is no longer checked.
	p.UpdateFrom("config", resolver.Static([]string{b.addr}))
	before := a.checks()
	n := b.checks()
	testutil.WaitFor(t, "5 more checks of b", 5*time.Second, func() bool { return b.checks() >= n+5 })
	if got := a.checks(); got > before+1 { // one may have been in flight
		t.Fatalf("a was checked %d more times after its removal", got-before)
	}
}

func TestCheckTypeChangesOnReload(t *testing.T) {
	f := newFakeEtcd(t, false)
	f.answer.Store(answerNoLeader)
	p := checkedPool(t, Settings{}, f.addr)
	ep := endpoint(p, f.addr)
	if f.checks() != 0 || !ep.Healthy() {
		t.Fatal("type none must not check")
	}
	s := p.Settings()
	s.HealthCheck = HealthCheck{Type: config.CheckEtcd, Interval: 5 * time.Millisecond, Timeout: time.Second, Fall: 1}
	p.SetSettings(s)
	testutil.WaitFor(t, "checks to start and mark it down", 5*time.Second, func() bool { return !ep.Healthy() })

	s.HealthCheck.Type = config.CheckNone
	p.SetSettings(s)
	if !ep.Healthy() || ep.LastCheckError() != "" {
		t.Fatal("turning checks off must forget their verdict")
	}
	n := f.checks()
	other := newFakeEtcd(t, false)
	// Prove time passes with a second pool that checks, then compare.
	q := checkedPool(t, Settings{HealthCheck: HealthCheck{Type: config.CheckEtcd, Interval: 5 * time.Millisecond, Timeout: time.Second}}, other.addr)
	_ = q
	testutil.WaitFor(t, "5 checks elsewhere", 5*time.Second, func() bool { return other.checks() >= 5 })
	if got := f.checks(); got > n+1 {
		t.Fatalf("%d checks after the type went to none", got-n)
	}
}

func TestCheckTimeoutDefault(t *testing.T) {
	for _, tc := range []struct{ interval, want time.Duration }{
		{time.Second, time.Second},
		{10 * time.Second, config.DefaultCheckTimeout},
		{0, config.DefaultCheckTimeout}, // the default interval, 5s
	} {
		if got := (HealthCheck{Type: config.CheckTCP, Interval: tc.interval}).withDefaults().Timeout; got != tc.want {
			t.Errorf("interval %v: timeout %v, want %v", tc.interval, got, tc.want)
		}
	}
}
