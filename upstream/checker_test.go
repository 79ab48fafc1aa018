package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// sharedPools returns n pools over addrs that share one registry of
// checkers, as the listeners of a Group do.
func sharedPools(t *testing.T, n int, s Settings, addrs ...string) ([]*Pool, *Checkers) {
	t.Helper()
	cs := NewCheckers(nil, nil)
	var pools []*Pool
	for range n {
		pools = append(pools, sharedPool(t, cs, s, addrs...))
	}
	return pools, cs
}

// sharedPool returns a pool over addrs whose checks run in cs.
func sharedPool(t *testing.T, cs *Checkers, s Settings, addrs ...string) *Pool {
	t.Helper()
	s.RetryDelay = time.Hour
	p := NewPool(Options{Settings: s, Policy: ordered{}, Checkers: cs})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static(addrs))
	return p
}

// fakeMembers starts n fake members and returns them and their addresses.
func fakeMembers(t *testing.T, n int) ([]*fakeEtcd, []string) {
	var fs []*fakeEtcd
	var addrs []string
	for range n {
		f := newFakeEtcd(t, false)
		fs = append(fs, f)
		addrs = append(addrs, f.addr)
	}
	return fs, addrs
}

// waitHealthy waits until addr is healthy as want says in every pool.
func waitHealthy(t *testing.T, pools []*Pool, addr string, want bool) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%s healthy=%v in all %d pools", addr, want, len(pools)), 10*time.Second, func() bool {
		for _, p := range pools {
			if endpoint(p, addr).Healthy() != want {
				return false
			}
		}
		return true
	})
}

// fastCheck is an etcd check every 20ms that moves the verdict at once.
func fastCheck() HealthCheck {
	return HealthCheck{Type: config.CheckEtcd, Interval: 20 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}
}

// TestPoolsShareTheirChecks: 20 pools in front of the same 3 members
// hold one check connection per member and send one check per member
// per interval, and a verdict change reaches every pool.
func TestPoolsShareTheirChecks(t *testing.T) {
	fs, addrs := fakeMembers(t, 3)
	pools, cs := sharedPools(t, 20, Settings{HealthCheck: fastCheck()}, addrs...)
	ep := endpoint(pools[0], addrs[0])
	testutil.WaitFor(t, "3 passing checks", 10*time.Second, func() bool { return streakOf(ep) >= 3 })
	if n := cs.running(); n != 3 {
		t.Fatalf("%d checkers run for 20 pools in front of 3 members, want 3", n)
	}
	for _, f := range fs {
		if n := f.conns.Accepted.Load(); n != 1 {
			t.Errorf("member %s accepted %d check connections, want 1", f.addr, n)
		}
	}
	before, streak := fs[0].checks(), streakOf(ep)
	testutil.WaitFor(t, "5 more checks", 10*time.Second, func() bool { return streakOf(ep) >= streak+5 })
	if n := fs[0].checks() - before; n > 7 {
		t.Fatalf("%d checks of one member in 5 intervals, want about 5", n)
	}

	fs[0].answer.Store(answerNoLeader)
	waitHealthy(t, pools, addrs[0], false)
	if endpoint(pools[19], addrs[0]).LastCheckError() == "" {
		t.Error("the check error did not reach every pool")
	}
	fs[0].answer.Store(answerHealthy)
	waitHealthy(t, pools, addrs[0], true)
}

// TestClosedPoolsReleaseTheirChecker: the checker runs while a pool uses
// it, and stops with the last one; an endpoint removed by an update lets
// go of it too.
func TestClosedPoolsReleaseTheirChecker(t *testing.T) {
	fs, addrs := fakeMembers(t, 2)
	pools, cs := sharedPools(t, 3, Settings{HealthCheck: fastCheck()}, addrs...)
	testutil.WaitFor(t, "both members checked", 10*time.Second, func() bool { return fs[0].checks() > 0 && fs[1].checks() > 0 })
	pools[0].Close()
	pools[1].UpdateFrom("config", resolver.Static(addrs[:1]))
	pools[2].UpdateFrom("config", resolver.Static(addrs[:1]))
	testutil.WaitFor(t, "the unused checker to close its connection", 10*time.Second, func() bool { return fs[1].conns.Open.Load() == 0 })
	if n := cs.running(); n != 1 {
		t.Fatalf("%d checkers run, want 1", n)
	}
	n := fs[0].checks()
	testutil.WaitFor(t, "3 more checks of the member still used", 10*time.Second, func() bool { return fs[0].checks() >= n+3 })

	pools[1].Close()
	pools[2].Close()
	if n := cs.running(); n != 0 {
		t.Fatalf("%d checkers run after every pool closed", n)
	}
	testutil.WaitFor(t, "the last checker to close its connection", 10*time.Second, func() bool { return fs[0].conns.Open.Load() == 0 })
}

// TestDifferentCheckSettingsDoNotShare: a check that differs in its
// settings, or in the TLS it speaks, runs on its own; TLS settings that
// don't apply to a member (a discovery CA for a plain member) don't split.
func TestDifferentCheckSettingsDoNotShare(t *testing.T) {
	fs, addrs := fakeMembers(t, 1)
	cs := NewCheckers(nil, nil)
	slower, tcp := fastCheck(), fastCheck()
	slower.Fall = 2
	tcp.Type = config.CheckTCP
	for _, s := range []Settings{
		{HealthCheck: fastCheck()},
		{HealthCheck: fastCheck(), DiscoveredTLS: &tls.Config{}}, // shares: plain member
		{HealthCheck: slower},
		{HealthCheck: tcp},
		{HealthCheck: fastCheck(), TLS: &tls.Config{}}, // speaks TLS
	} {
		sharedPool(t, cs, s, addrs...)
	}
	if n := cs.running(); n != 4 {
		t.Fatalf("%d checkers run for %s, want 4", n, fs[0].addr)
	}
}

// TestSharedVerdictOwnOnUnhealthy: pools sharing a checker hear the same
// verdict, and each applies its own on-unhealthy.
func TestSharedVerdictOwnOnUnhealthy(t *testing.T) {
	fs, addrs := fakeMembers(t, 2)
	cs := NewCheckers(nil, nil)
	keep := sharedPool(t, cs, Settings{HealthCheck: fastCheck(), OnUnhealthy: config.UnhealthyKeep}, addrs...)
	closing := sharedPool(t, cs, Settings{HealthCheck: fastCheck(), OnUnhealthy: config.UnhealthyClose}, addrs...)
	var conns []net.Conn
	for _, p := range []*Pool{keep, closing} {
		conn, ep, err := p.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		ep.Track(closerConn{conn})
		conns = append(conns, conn)
	}
	fs[0].answer.Store(answerNoLeader)
	waitHealthy(t, []*Pool{keep, closing}, addrs[0], false)
	for i, want := range []bool{false, true} {
		_ = conns[i].SetReadDeadline(time.Now().Add(closeSpread + 200*time.Millisecond))
		_, err := conns[i].Read(make([]byte, 1))
		if closed := errors.Is(err, net.ErrClosed); closed != want {
			t.Errorf("pool %d: connection closed=%v (read: %v), want %v", i, closed, err, want)
		}
	}
}

// TestJoiningPoolTakesTheVerdict: a pool that starts checking a member
// already found unhealthy by another pool's checks takes that verdict at
// once, without a check of its own.
func TestJoiningPoolTakesTheVerdict(t *testing.T) {
	fs, addrs := fakeMembers(t, 1)
	fs[0].answer.Store(answerNoLeader)
	cs := NewCheckers(nil, nil)
	hc := fastCheck()
	hc.Interval = time.Hour
	first := sharedPool(t, cs, Settings{HealthCheck: hc}, addrs...)
	waitHealthy(t, []*Pool{first}, addrs[0], false)
	second := sharedPool(t, cs, Settings{HealthCheck: hc}, addrs...)
	if ep := endpoint(second, addrs[0]); ep.Healthy() || ep.LastCheckError() == "" {
		t.Fatalf("the joining pool's endpoint: healthy=%v, error %q", ep.Healthy(), ep.LastCheckError())
	}
	if n := fs[0].checks(); n != 1 {
		t.Fatalf("%d checks, want the first pool's only", n)
	}
}
