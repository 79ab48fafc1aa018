package upstream

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// learnerSlack covers a check round and scheduling on a loaded machine
// under -race, on top of an interval.
const learnerSlack = 500 * time.Millisecond

// TestLearnerFoundByReadyz is issue 25, items 1 and 2, with a real
// member: /readyz's non_learner finds a learner, which is healthy but
// gets no client although the (ordered) policy prefers it, and the
// reason names the check that failed; promoted, it takes clients within
// one check interval.
func TestLearnerFoundByReadyz(t *testing.T) {
	c := testutil.Cluster(t, 1)
	li, err := c.AddLearner()
	if err != nil {
		t.Fatal(err)
	}
	learner, voter := c.Members[li].ClientAddr(), c.Members[0].ClientAddr()
	const interval = 200 * time.Millisecond
	hc := HealthCheck{Type: config.CheckEtcd, Interval: interval, Timeout: time.Second, Fall: 1, Rise: 1}
	p := checkedPool(t, Settings{HealthCheck: hc}, learner, voter)
	ep := endpoint(p, learner)
	testutil.WaitFor(t, "the learner to be found", 10*time.Second, func() bool { return ep.Stats().Learner })
	if why := ep.Stats().LearnerWhy; !strings.Contains(why, "GET /readyz: [-]non_learner failed") {
		t.Errorf("LearnerWhy = %q, want the /readyz check that failed", why)
	}
	if !ep.Healthy() || ep.Up() {
		t.Fatalf("the learner: healthy=%v up=%v, want healthy and not up", ep.Healthy(), ep.Up())
	}
	for range 10 {
		if got := dialAddr(t, p); got != voter {
			t.Fatalf("a client went to %s, want the voter %s", got, voter)
		}
	}

	if err := c.Promote(li); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	testutil.WaitFor(t, "the promoted learner to take clients", 10*time.Second, func() bool { return dialAddr(t, p) == learner })
	took := time.Since(promoted)
	t.Logf("the promoted learner took clients %s after its promotion (interval %s)", took, interval)
	if took > interval+learnerSlack {
		t.Errorf("took %s, want within one interval (%s, +%s slack)", took, interval, learnerSlack)
	}
}

// TestLearnerIsNoLastResort: when every other endpoint is down, a new
// client is tried on them all, but never on a learner: it would refuse
// the client's requests.
func TestLearnerIsNoLastResort(t *testing.T) {
	c := testutil.Cluster(t, 1)
	li, err := c.AddLearner()
	if err != nil {
		t.Fatal(err)
	}
	learner, dead := c.Members[li].ClientAddr(), testutil.RefusingAddr(t)
	hc := HealthCheck{Type: config.CheckEtcd, Interval: 50 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}
	p := checkedPool(t, Settings{HealthCheck: hc}, learner, dead)
	ep := endpoint(p, learner)
	testutil.WaitFor(t, "the learner to be found", 10*time.Second, func() bool { return ep.Stats().Learner })
	testutil.WaitFor(t, "the dead endpoint to be down", 10*time.Second, func() bool { return !endpoint(p, dead).Healthy() })
	for range 5 {
		conn, _, err := p.Dial(context.Background())
		if err == nil {
			conn.Close()
			t.Fatal("a client was served with only a learner left")
		}
		if !errors.Is(err, ErrNoEndpoint) || !strings.Contains(err.Error(), "tried 1 endpoints") {
			t.Fatalf("Dial: %v, want the dead endpoint tried alone", err)
		}
	}
	if n := ep.Timings().Dial().Count; n != 0 {
		t.Fatalf("the learner was dialled %d times", n)
	}
}

// TestLearnerFoundByStatus: a member without /readyz (etcd before 3.5.11)
// is asked Status instead, on its check's first round and then every
// round while it is a learner, and nothing else; promoted, it takes
// clients within an interval and is checked with /health alone again.
func TestLearnerFoundByStatus(t *testing.T) {
	f, good := newFake34(t, false), newFake34(t, false)
	f.learner.Store(true)
	const interval = 50 * time.Millisecond
	hc := HealthCheck{Type: config.CheckEtcd, Interval: interval, Timeout: time.Second, Fall: 1, Rise: 1}
	p := checkedPool(t, Settings{HealthCheck: hc}, f.addr, good.addr)
	ep := endpoint(p, f.addr)
	testutil.WaitFor(t, "the learner to be found", 10*time.Second, func() bool { return ep.Stats().Learner })
	if why := ep.Stats().LearnerWhy; why != "Status: is_learner" {
		t.Errorf("LearnerWhy = %q", why)
	}
	if got := dialAddr(t, p); got != good.addr {
		t.Fatalf("a client went to %s, want %s", got, good.addr)
	}
	before := f.counts()
	testutil.WaitFor(t, "5 more rounds", 10*time.Second, func() bool { return f.counts()[statusPath] >= before[statusPath]+5 })
	after := f.counts()
	if after[healthPath] != before[healthPath] || after[readyzPath] != before[readyzPath] {
		t.Errorf("a learner's rounds asked more than Status: before %v, after %v", before, after)
	}

	f.learner.Store(false)
	promoted := time.Now()
	testutil.WaitFor(t, "the promoted learner to take clients", 10*time.Second, func() bool { return dialAddr(t, p) == f.addr })
	if took := time.Since(promoted); took > interval+learnerSlack {
		t.Errorf("took %s, want within one interval (%s, +%s slack)", took, interval, learnerSlack)
	}
	before = f.counts()
	testutil.WaitFor(t, "5 more rounds", 10*time.Second, func() bool { return f.counts()[healthPath] >= before[healthPath]+5 })
	if after := f.counts(); after[statusPath] != before[statusPath] || after[readyzPath] != before[readyzPath] {
		t.Errorf("a voter's rounds asked more than /health: before %v, after %v", before, after)
	}
}

// TestMemberListFindsALearner: with a check that can't tell (tcp), member
// sync's member list says which configured endpoint is a learner; it gets
// no client until the list says it was promoted.
func TestMemberListFindsALearner(t *testing.T) {
	c := testutil.Cluster(t, 1)
	li, err := c.AddLearner()
	if err != nil {
		t.Fatal(err)
	}
	learner, voter := c.Members[li].ClientAddr(), c.Members[0].ClientAddr()
	s := Settings{MemberSync: 50 * time.Millisecond, HealthCheck: HealthCheck{Type: config.CheckTCP, Interval: 50 * time.Millisecond, Timeout: time.Second}}
	p := checkedPool(t, s, learner, voter)
	ep := endpoint(p, learner)
	testutil.WaitFor(t, "member sync to find the learner", 10*time.Second, func() bool { return ep.Stats().Learner })
	if why := ep.Stats().LearnerWhy; why != "MemberList: is_learner" {
		t.Errorf("LearnerWhy = %q", why)
	}
	for range 5 {
		if got := dialAddr(t, p); got != voter {
			t.Fatalf("a client went to %s, want %s", got, voter)
		}
	}
	if err := c.Promote(li); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the promoted learner to take clients", 10*time.Second, func() bool { return dialAddr(t, p) == learner })
}

// TestJoiningLearnerAwaitsItsFirstCheck: a learner that a reload adds to
// a running pool gets no client before its first check reports (which
// runs at once, not an interval later), nor after; a voting member added
// the same way gets clients once its first check reports. The learner's
// checks are held until its burst of dials is done, so that the burst
// surely comes before any check; the ordered policy prefers the learner.
// The new voter is added to the cluster first: etcd takes one learner at
// a time.
func TestJoiningLearnerAwaitsItsFirstCheck(t *testing.T) {
	c := testutil.Cluster(t, 1)
	vi, err := c.AddMember()
	if err != nil {
		t.Fatal(err)
	}
	li, err := c.AddLearner()
	if err != nil {
		t.Fatal(err)
	}
	learner, voter, joined := c.Members[li].ClientAddr(), c.Members[0].ClientAddr(), c.Members[vi].ClientAddr()
	release, dial := holdChecksOf(learner)
	const interval = 3 * time.Second
	hc := HealthCheck{Type: config.CheckEtcd, Interval: interval, Timeout: 10 * time.Second, Fall: 1, Rise: 1}
	p := NewPool(Options{Settings: Settings{HealthCheck: hc, RetryDelay: time.Hour}, Policy: ordered{}, Checkers: NewCheckers(dial, nil)})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static([]string{voter}))

	p.UpdateFrom("config", resolver.Static([]string{learner, voter}))
	dialsGoTo(t, p, voter, "before the learner's first check")
	ep := endpoint(p, learner)
	if st := ep.Stats(); st.Up() || !st.AwaitingCheck {
		t.Fatalf("the joining learner before its first check: up=%v awaiting=%v, want awaiting and not up", st.Up(), st.AwaitingCheck)
	}
	released := time.Now()
	release()
	testutil.WaitFor(t, "the learner's first check", 10*time.Second, func() bool { return ep.Stats().Learner })
	if took := time.Since(released); took > interval {
		t.Errorf("the first check reported %s after it could run, want at once (interval %s)", took, interval)
	}
	dialsGoTo(t, p, voter, "after the learner's first check")

	added := time.Now()
	p.UpdateFrom("config", resolver.Static([]string{joined, learner, voter}))
	testutil.WaitFor(t, "the new voter to take clients", 10*time.Second, func() bool { return dialAddr(t, p) == joined })
	if took := time.Since(added); took > interval {
		t.Errorf("the new voter took clients %s after it joined, want within a check round trip (interval %s)", took, interval)
	}
}

// dialsGoTo dials p a number of times and fails unless every client goes
// to want.
func dialsGoTo(t *testing.T, p *Pool, want, when string) {
	t.Helper()
	for range 20 {
		if got := dialAddr(t, p); got != want {
			t.Fatalf("%s: a client went to %s, want %s", when, got, want)
		}
	}
}

// holdChecksOf returns a dial function for a Checkers that holds every
// dial to addr until release is called (or the dial's context ends).
func holdChecksOf(addr string) (release func(), dial DialFunc) {
	gate := make(chan struct{})
	var once sync.Once
	var d net.Dialer
	dial = func(ctx context.Context, network, a string) (net.Conn, error) {
		if a == addr {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return d.DialContext(ctx, network, a)
	}
	return func() { once.Do(func() { close(gate) }) }, dial
}
