package upstream

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// These tests run real etcd members in-process.

// TestFrozenMember puts a relay in front of a member and freezes it: the
// kernel still completes handshakes, nothing gets an answer. The etcd check
// takes the endpoint out within interval × fall + timeout; the tcp check
// can't see the difference and keeps sending clients there.
func TestFrozenMember(t *testing.T) {
	c := testutil.Cluster(t, 1)
	direct := c.ClientAddrs()[0]
	const (
		interval = 100 * time.Millisecond
		timeout  = 100 * time.Millisecond
		fall     = 2
		bound    = interval*fall + timeout
		// slack covers scheduling on a loaded CI machine under -race.
		slack = 400 * time.Millisecond
	)
	for _, typ := range []config.CheckType{config.CheckEtcd, config.CheckTCP} {
		t.Run(string(typ), func(t *testing.T) {
			r := newRelay(t, direct)
			hc := HealthCheck{Type: typ, Interval: interval, Timeout: timeout, Fall: fall, Rise: 1}
			// The relay is preferred (ordered policy): clients go there
			// while it is up.
			p := checkedPool(t, Settings{HealthCheck: hc}, r.addr, direct)
			ep := endpoint(p, r.addr)
			testutil.WaitFor(t, "a passing check through the relay", 10*time.Second, func() bool { return streakOf(ep) >= 1 })
			if got := dialAddr(t, p); got != r.addr {
				t.Fatalf("before the freeze a client went to %s", got)
			}

			r.freeze()
			frozen := time.Now()
			if typ == config.CheckTCP {
				// Wait for fall more tcp checks to pass after the freeze,
				// and a full bound: the endpoint is still up.
				n := streakOf(ep)
				testutil.WaitFor(t, "tcp checks to go on passing", 10*time.Second, func() bool {
					return streakOf(ep) >= n+fall && time.Since(frozen) > bound
				})
				if !ep.Up() {
					t.Fatalf("the tcp check marked the frozen member down: %s", ep.LastCheckError())
				}
				if got := dialAddr(t, p); got != r.addr {
					t.Fatalf("with tcp checks a new client went to %s, want the frozen %s", got, r.addr)
				}
				return
			}
			testutil.WaitFor(t, "the frozen member to be marked down", 10*time.Second, func() bool { return !ep.Healthy() })
			took := time.Since(frozen)
			t.Logf("frozen member marked down after %s (interval × fall + timeout = %s)", took, bound)
			if took > bound+slack {
				t.Errorf("marked down after %s, want within %s (+%s slack)", took, bound, slack)
			}
			if got := dialAddr(t, p); got != direct {
				t.Fatalf("a new client went to %s, want the healthy %s", got, direct)
			}

			// Thawed, it comes back.
			r.thaw()
			testutil.WaitFor(t, "the thawed member to be marked up", 10*time.Second, ep.Healthy)
			if got := dialAddr(t, p); got != r.addr {
				t.Fatalf("after the thaw a client went to %s", got)
			}
		})
	}
}

// TestLostQuorumMemberAvoided: a member whose cluster lost quorum still
// accepts connections but answers /health with 503; it is avoided while a
// healthy endpoint exists.
func TestLostQuorumMemberAvoided(t *testing.T) {
	lost, healthy := testutil.Cluster(t, 2), testutil.Cluster(t, 1)
	a, b := lost.Members[0].ClientAddr(), healthy.ClientAddrs()[0]
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond, Fall: 2, Rise: 2}
	p := checkedPool(t, Settings{HealthCheck: hc}, a, b)
	ep := endpoint(p, a)
	testutil.WaitFor(t, "passing checks", 10*time.Second, func() bool { return streakOf(ep) >= 2 })
	if got := dialAddr(t, p); got != a {
		t.Fatalf("before the quorum loss a client went to %s", got)
	}

	lost.Stop(1)
	testutil.WaitFor(t, "the member without quorum to be marked unhealthy", 20*time.Second, func() bool { return !ep.Healthy() })
	// Its first checks may time out (a linearizable read waits for a
	// leader); once it knows it has none, etcd answers 503 at once.
	testutil.WaitFor(t, "etcd to answer that it has no leader", 20*time.Second, func() bool {
		return strings.Contains(ep.LastCheckError(), "RAFT NO LEADER")
	})
	if !ep.Stats().Active {
		t.Fatal("its dials still work: it must stay active, only unhealthy")
	}
	for range 5 {
		if got := dialAddr(t, p); got != b {
			t.Fatalf("a new client went to %s, want the healthy %s", got, b)
		}
	}

	if err := lost.Restart(1); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the member to be healthy again with its quorum back", 20*time.Second, ep.Healthy)
}

// TestMemberSync: with member sync, a member added to the cluster joins
// the pool without any change to the configured endpoints, learners stay
// out, and a removed member leaves.
func TestMemberSync(t *testing.T) {
	c := testutil.Cluster(t, 1)
	seed := c.ClientAddrs()[0]
	s := Settings{
		MemberSync:  50 * time.Millisecond,
		HealthCheck: HealthCheck{Type: config.CheckEtcd, Interval: 50 * time.Millisecond, Timeout: time.Second},
	}
	p := checkedPool(t, s, seed)
	addrs := func() []string { return poolAddrs(p) }

	i, err := c.AddMember()
	if err != nil {
		t.Fatal(err)
	}
	learner, err := c.AddLearner() // etcd allows one learner at a time
	if err != nil {
		t.Fatal(err)
	}
	added := c.Members[i].ClientAddr()
	want := []string{seed, added}
	slices.Sort(want)
	testutil.WaitFor(t, "the added member to join the pool", 10*time.Second, func() bool { return slices.Equal(addrs(), want) })
	if got := dialAddr(t, p); got != seed && got != added {
		t.Fatalf("a client went to %s", got)
	}
	ep := endpoint(p, added)
	testutil.WaitFor(t, "the added member to be checked healthy", 10*time.Second, func() bool { return streakOf(ep) >= 1 })

	// The learner is left out, though it has started and has a client
	// URL. Two more rounds: the second began after it was added.
	r := p.Stats().SyncRounds
	testutil.WaitFor(t, "two more sync rounds", 10*time.Second, func() bool { return p.Stats().SyncRounds >= r+2 })
	if endpoint(p, c.Members[learner].ClientAddr()) != nil {
		t.Fatal("member sync added a learner")
	}

	reloadsKeepSynced(t, p, seed, added)

	if err := c.RemoveMember(i); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the removed member to leave the pool", 10*time.Second, func() bool { return slices.Equal(addrs(), []string{seed}) })
	if !ep.Stats().Removed {
		t.Fatal("the removed member's endpoint is not marked removed")
	}

	// Promoted, the learner is a voting member like any other.
	if err := c.Promote(learner); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the promoted learner to join", 10*time.Second, func() bool { return endpoint(p, c.Members[learner].ClientAddr()) != nil })

	// Member sync off: what it added goes, the seed stays.
	s = p.Settings()
	s.MemberSync = 0
	p.SetSettings(s)
	if got := addrs(); !slices.Equal(got, []string{seed}) {
		t.Fatalf("after member sync was turned off the pool has %v, want the seed only", got)
	}
}

// poolAddrs returns the addresses of p's endpoints, sorted.
func poolAddrs(p *Pool) []string {
	var out []string
	for _, ep := range p.Endpoints() {
		out = append(out, ep.Addr())
	}
	slices.Sort(out)
	return out
}

// reloadsKeepSynced checks that reloads and sync don't fight: the member
// added by sync is kept, with its state, when a reload lists it and when
// the next reload no longer does.
func reloadsKeepSynced(t *testing.T, p *Pool, seed, added string) {
	t.Helper()
	ep := endpoint(p, added)
	for _, seeds := range [][]string{{seed}, {seed, added}, {seed}} {
		if _, removed := p.UpdateFrom("config", resolver.Static(seeds)); len(removed) != 0 {
			t.Fatalf("a reload to %v removed %v", seeds, removed)
		}
		if endpoint(p, added) != ep {
			t.Fatalf("a reload to %v dropped or replaced the synced member", seeds)
		}
	}
}
