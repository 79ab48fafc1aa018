package upstream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
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
