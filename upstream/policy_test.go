package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

func TestNewPolicy(t *testing.T) {
	for name, want := range map[config.Policy]Policy{
		"":                            &StickyRandom{},
		config.PolicyStickyRandom:     &StickyRandom{},
		config.PolicyRoundRobin:       &RoundRobin{},
		config.PolicyLeastConnections: LeastConnections{},
	} {
		got, err := NewPolicy(name)
		if err != nil {
			t.Fatalf("NewPolicy(%q): %v", name, err)
		}
		if gt, wt := typeName(got), typeName(want); gt != wt {
			t.Errorf("NewPolicy(%q) = %s, want %s", name, gt, wt)
		}
	}
	if _, err := NewPolicy("random"); err == nil {
		t.Fatal("NewPolicy accepted an unknown name")
	}
}

func typeName(p Policy) string {
	switch p.(type) {
	case *StickyRandom:
		return "StickyRandom"
	case *RoundRobin:
		return "RoundRobin"
	case LeastConnections:
		return "LeastConnections"
	}
	return "?"
}

func candidates(weights ...uint16) []*Endpoint {
	eps := make([]*Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = newEndpoint(resolver.Endpoint{Addr: string(rune('a'+i)) + ":1", Weight: w})
	}
	return eps
}

func TestRoundRobinTakesTurns(t *testing.T) {
	eps := candidates(0, 0, 0)
	rr := &RoundRobin{}
	counts := map[*Endpoint]int{}
	var prev *Endpoint
	for i := range 300 {
		ep := rr.Pick(eps)
		if ep == prev {
			t.Fatalf("pick %d repeated %s", i, ep.Addr())
		}
		prev = ep
		counts[ep]++
	}
	for _, ep := range eps {
		if counts[ep] != 100 {
			t.Errorf("%s: %d of 300 picks, want exactly 100", ep.Addr(), counts[ep])
		}
	}
}

func TestRoundRobinFollowsWeights(t *testing.T) {
	eps := candidates(60, 30, 10)
	rr := &RoundRobin{}
	const n = 10000
	counts := map[*Endpoint]int{}
	run, maxRun := 0, 0
	var prev *Endpoint
	for range n {
		ep := rr.Pick(eps)
		counts[ep]++
		if ep == prev {
			run++
		} else {
			run = 1
		}
		maxRun = max(maxRun, run)
		prev = ep
	}
	for i, want := range []int{6000, 3000, 1000} {
		if got := counts[eps[i]]; got < want-50 || got > want+50 {
			t.Errorf("%s (weight %d): %d of %d picks, want %d", eps[i].Addr(), eps[i].weight(), got, n, want)
		}
	}
	// Interleaved, not in blocks of 6000, 3000 and 1000.
	if maxRun > 4 {
		t.Errorf("the same endpoint was picked %d times in a row", maxRun)
	}
}

func TestLeastConnectionsBalancesOpenConnections(t *testing.T) {
	servers := []*server{newServer(t), newServer(t), newServer(t)}
	var res []resolver.Endpoint
	for i, s := range servers {
		w := uint16(1)
		if i == 0 {
			w = 2 // twice the others' share
		}
		res = append(res, resolver.Endpoint{Addr: s.addr, Weight: w})
	}
	p := NewPool(Options{Settings: Settings{RetryDelay: time.Hour, Policy: config.PolicyLeastConnections}})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", res)

	untrack := map[string][]func(){}
	for range 200 {
		conn, ep, err := p.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		untrack[ep.Addr()] = append(untrack[ep.Addr()], ep.Track(closerConn{conn}))
	}
	for i, want := range []int64{100, 50, 50} {
		if got := endpoint(p, servers[i].addr).OpenConns(); got < want-1 || got > want+1 {
			t.Errorf("endpoint %d (weight %d): %d open connections, want %d", i, res[i].Weight, got, want)
		}
	}
	// Connections to the second endpoint end: it gets the next clients.
	for _, u := range untrack[servers[1].addr][:30] {
		u()
	}
	for i := range 30 {
		conn, ep, err := p.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		ep.Track(closerConn{conn})
		if ep.Addr() != servers[1].addr {
			t.Fatalf("dial %d after 30 connections ended went to %s, want the emptied endpoint", i, ep.Addr())
		}
	}
}

func TestPolicyFromSettingsAndReload(t *testing.T) {
	a, b := newServer(t), newServer(t)
	p := NewPool(Options{Settings: Settings{RetryDelay: time.Hour, Policy: config.PolicyRoundRobin}})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static([]string{a.addr, b.addr}))
	seen := map[string]int{}
	for range 10 {
		ep := dialOnce(t, p)
		seen[ep.Addr()]++
	}
	if seen[a.addr] != 5 || seen[b.addr] != 5 {
		t.Fatalf("round-robin over 2 endpoints: %v, want 5 each", seen)
	}
	s := p.Settings()
	s.Policy = config.PolicyStickyRandom
	p.SetSettings(s)
	first := ""
	for i := range 10 {
		ep := dialOnce(t, p)
		if i == 0 {
			first = ep.Addr()
		} else if ep.Addr() != first {
			t.Fatal("after a reload to sticky-random the pick moved")
		}
	}
}

// The usual pick, every endpoint up and of one priority, hands the pool's
// own slice to the policy: no allocation per new connection. With one
// endpoint down the candidates are copied, and the down one is never
// picked.
func TestPickCopiesOnlyWhenItMust(t *testing.T) {
	p := NewPool(Options{Policy: &StickyRandom{}})
	defer p.Close()
	p.UpdateFrom("config", resolver.Static([]string{"10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"}))
	eps := p.Endpoints()
	if n := testing.AllocsPerRun(100, func() { p.pick(eps, nil, levelUp) }); n != 0 {
		t.Errorf("pick among endpoints all up: %v allocations, want 0", n)
	}
	eps[1].active.Store(false)
	for range 100 {
		if ep := p.pick(eps, nil, levelUp); ep == nil || ep == eps[1] {
			t.Fatalf("picked %v with %s down", ep, eps[1].Addr())
		}
	}
}
