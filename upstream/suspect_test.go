package upstream

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// waitingConn is a tracked connection whose Unanswered the test sets, as
// the forwarder would: since when its bytes wait for an answer.
type waitingConn struct {
	since  atomic.Int64 // Unix nanoseconds; 0 when nothing waits
	closed atomic.Bool
}

func (w *waitingConn) Close() error { w.closed.Store(true); return nil }
func (w *waitingConn) CloseIfQuiet(time.Duration) bool {
	return w.since.Load() == 0 && w.Close() == nil
}
func (w *waitingConn) GoAway() bool          { return false }
func (w *waitingConn) Unanswered() time.Time { return unixOrZero(w.since.Load()) }
func (w *waitingConn) wait(at time.Time)     { w.since.Store(at.UnixNano()) }
func unixOrZero(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// defaultSchedule is the default check schedule with a suspect-after of
// its own.
func defaultSchedule(suspectAfter time.Duration) HealthCheck {
	return HealthCheck{Type: config.CheckEtcd, Interval: config.DefaultCheckInterval, Timeout: config.DefaultCheckTimeout,
		Fall: config.DefaultFall, Rise: config.DefaultRise, SuspectAfter: suspectAfter}
}

// TestSuspicionLeavesFrozenMember: with the default interval, timeout and
// fall, a frozen member (a relay that stops copying) whose client waits
// for an answer is marked down within twice suspect-after and a sweep,
// not the interval × fall + timeout of the checks of every interval, and
// its connection is closed; the status says frozen.
func TestSuspicionLeavesFrozenMember(t *testing.T) {
	f, good := newFakeEtcd(t, false), newFakeEtcd(t, false)
	r := newRelay(t, f.addr)
	const after = 200 * time.Millisecond
	hc := defaultSchedule(after)
	p := checkedPool(t, Settings{HealthCheck: hc}, r.addr, good.addr)
	ep := endpoint(p, r.addr)
	testutil.WaitFor(t, "a first passing check", 10*time.Second, func() bool { return streakOf(ep) >= 1 })
	w := &waitingConn{}
	defer ep.Track(w)()

	r.freeze()
	frozen := time.Now()
	w.wait(frozen)
	testutil.WaitFor(t, "the frozen member marked down", 10*time.Second, func() bool { return !ep.Healthy() })
	took := time.Since(frozen)
	bound := 2*after + after/2 + hc.sweepEvery()
	t.Logf("frozen member marked down %s after the freeze (suspect-after %s, bound %s)", took, after, bound)
	if took > bound+time.Second {
		t.Errorf("marked down after %s, want within %s", took, bound)
	}
	st := ep.Stats()
	if !strings.HasPrefix(st.CheckError, "frozen: ") || st.Frozen != 1 || st.SuspicionChecks != 1 {
		t.Errorf("stats: error %q, frozen %d, suspicion checks %d; want frozen, 1, 1", st.CheckError, st.Frozen, st.SuspicionChecks)
	}
	testutil.WaitFor(t, "its connection closed", 5*time.Second, w.closed.Load)
	if got := dialAddr(t, p); got != good.addr {
		t.Fatalf("a new client went to %s, want %s", got, good.addr)
	}
}

// TestSuspicionRunsBesideARunningCheck: a member frozen while a check of
// the interval waits for its answer is found frozen by the check on
// suspicion, which runs beside it, well before that check's timeout; the
// check of the interval is left to end as it would.
func TestSuspicionRunsBesideARunningCheck(t *testing.T) {
	f, good := newFakeEtcd(t, false), newFakeEtcd(t, false)
	r := newRelay(t, f.addr)
	const after = 200 * time.Millisecond
	hc := defaultSchedule(after)
	hc.Interval, hc.Timeout = 400*time.Millisecond, 10*time.Second
	p := checkedPool(t, Settings{HealthCheck: hc}, r.addr, good.addr)
	ep := endpoint(p, r.addr)
	testutil.WaitFor(t, "a first passing check", 10*time.Second, func() bool { return streakOf(ep) >= 1 })
	r.freeze()
	// Past an interval, a check of the interval hangs; then a client's
	// bytes wait.
	running := time.Now().Add(hc.Interval)
	testutil.WaitFor(t, "a check of the interval to start", 10*time.Second, func() bool { return time.Now().After(running) })
	w := &waitingConn{}
	defer ep.Track(w)()
	w.wait(time.Now())
	start := time.Now()
	testutil.WaitFor(t, "the frozen member marked down", 10*time.Second, func() bool { return !ep.Healthy() })
	if took := time.Since(start); took > hc.Timeout/2 {
		t.Errorf("marked down after %s: the check of the interval ran to its timeout %s", took, hc.Timeout)
	}
	_, failed := ep.Timings().CheckResults()
	if st := ep.Stats(); st.SuspicionChecks != 1 || st.Frozen != 1 || failed != 1 {
		t.Errorf("stats: %d checks on suspicion, %d frozen, %d failed checks; want 1, 1 and 1 (the check of the interval still runs)", st.SuspicionChecks, st.Frozen, failed)
	}
}

// TestSlowCheckIsNoFreeze: a member whose /health takes longer than
// suspect-after, while a client's bytes wait, answers the check on
// suspicion (its process runs) and is not found frozen; the check of the
// interval runs to its own timeout and counts toward fall like any
// failed check.
func TestSlowCheckIsNoFreeze(t *testing.T) {
	f := newFakeEtcd(t, false)
	const after = 50 * time.Millisecond
	hc := defaultSchedule(after)
	hc.Interval, hc.Timeout, hc.Fall = 500*time.Millisecond, 400*time.Millisecond, 3
	p := checkedPool(t, Settings{HealthCheck: hc}, f.addr)
	ep := endpoint(p, f.addr)
	testutil.WaitFor(t, "a first passing check", 10*time.Second, func() bool { return streakOf(ep) >= 1 })
	f.answer.Store(answerHang)
	w := &waitingConn{}
	defer ep.Track(w)()
	w.wait(time.Now())
	testutil.WaitFor(t, "a slow check to time out", 10*time.Second, func() bool { return len(f.gaveUpAfter()) >= 1 })
	gaveUp := f.gaveUpAfter()[0]
	st := ep.Stats()
	t.Logf("the slow check gave up after %s; %d checks on suspicion, %d answers to /version", gaveUp.Round(time.Millisecond), st.SuspicionChecks, f.versions.Load())
	if gaveUp < hc.Timeout-50*time.Millisecond {
		t.Errorf("the check of the interval gave up after %s, want its timeout %s", gaveUp, hc.Timeout)
	}
	if st.Frozen != 0 || st.SuspicionChecks < 1 || f.versions.Load() < 1 {
		t.Errorf("stats: %d frozen, %d checks on suspicion (%d answered); want none frozen, one or more asked", st.Frozen, st.SuspicionChecks, f.versions.Load())
	}
	testutil.WaitFor(t, "the slow check counted as failed", 5*time.Second, func() bool { return streakOf(ep) < 0 })
	if !ep.Healthy() || ep.Stats().Frozen != 0 {
		t.Errorf("healthy %v, frozen %d; want healthy, none frozen, before fall %d failed checks", ep.Healthy(), ep.Stats().Frozen, hc.Fall)
	}
}

// TestStuckStreamCostsOneCheck: a connection that waits for good on a
// healthy member (a Lock, a watch, a ping ack) costs one check on
// suspicion, not one a sweep; a new one costs one more; a slow check
// without a waiting connection marks nothing down.
func TestStuckStreamCostsOneCheck(t *testing.T) {
	f := newFakeEtcd(t, false)
	const after = 50 * time.Millisecond
	hc := defaultSchedule(after)
	p := checkedPool(t, Settings{HealthCheck: hc}, f.addr)
	ep := endpoint(p, f.addr)
	testutil.WaitFor(t, "a first passing check", 10*time.Second, func() bool { return streakOf(ep) >= 1 })
	a, b := &waitingConn{}, &waitingConn{}
	defer ep.Track(a)()
	defer ep.Track(b)()
	a.wait(time.Now())
	testutil.WaitFor(t, "a check on suspicion", 5*time.Second, func() bool { return ep.Stats().SuspicionChecks == 1 })
	// 20 sweeps and more later, still one.
	deadline := time.Now().Add(20 * hc.sweepEvery())
	testutil.WaitFor(t, "20 sweeps", 5*time.Second, func() bool { return time.Now().After(deadline) })
	if n := ep.Stats().SuspicionChecks; n != 1 {
		t.Fatalf("%d checks on suspicion for one stuck connection, want 1", n)
	}
	b.wait(time.Now())
	testutil.WaitFor(t, "a check for the new stuck connection", 5*time.Second, func() bool { return ep.Stats().SuspicionChecks == 2 })
	deadline = time.Now().Add(20 * hc.sweepEvery())
	testutil.WaitFor(t, "20 sweeps", 5*time.Second, func() bool { return time.Now().After(deadline) })
	if st := ep.Stats(); st.SuspicionChecks != 2 || !ep.Healthy() || st.Frozen != 0 {
		t.Fatalf("two stuck connections: %d checks on suspicion, healthy %v, frozen %d; want 2, true, 0", st.SuspicionChecks, ep.Healthy(), st.Frozen)
	}
	if got, asked := f.checks(), f.versions.Load(); got > 1+1 || asked != 2 {
		t.Errorf("the member saw %d checks and %d /version, want the first and at most one of the interval, and two on suspicion", got, asked)
	}
}

// TestFailedCheckWithoutWaitingIsNoFreeze: a check that fails after
// suspect-after while no connection waits (answered meanwhile) counts as
// a failure, not a freeze.
func TestFailedCheckWithoutWaitingIsNoFreeze(t *testing.T) {
	c := &checker{key: checkKey{hc: defaultSchedule(time.Millisecond)}, subs: map[*Endpoint]statusSetter{}}
	ep := newEndpoint(resolver.Endpoint{Addr: "127.0.0.1:1"})
	c.subs[ep] = nil
	w := &waitingConn{}
	defer ep.Track(w)()
	start := time.Now().Add(-time.Second)
	if _, frozen := c.frozen(start, errors.New("timeout")); frozen {
		t.Fatal("frozen with no connection waiting")
	}
	w.wait(start)
	if why, frozen := c.frozen(start, errors.New("timeout")); !frozen || !strings.HasPrefix(why, "frozen: ") {
		t.Fatalf("frozen = %v (%q) with a connection waiting since the check began", frozen, why)
	}
	if _, frozen := c.frozen(time.Now(), errors.New("refused")); frozen {
		t.Fatal("a quick failure is no freeze")
	}
}

// TestPauseIsNoFreeze: a member whose process leaves one question
// unanswered (a pause of its own, or of the gateway) and answers the next
// is not frozen: the second question clears the wait.
func TestPauseIsNoFreeze(t *testing.T) {
	f := newFakeEtcd(t, false)
	const after = 200 * time.Millisecond
	p := checkedPool(t, Settings{HealthCheck: defaultSchedule(after)}, f.addr)
	ep := endpoint(p, f.addr)
	testutil.WaitFor(t, "a first passing check", 10*time.Second, func() bool { return streakOf(ep) >= 1 })
	w := &waitingConn{}
	defer ep.Track(w)()
	f.pauseVersions.Store(1)
	w.wait(time.Now())
	testutil.WaitFor(t, "two questions on suspicion", 10*time.Second, func() bool { return f.versions.Load() >= 2 })
	testutil.WaitFor(t, "the suspicion recorded", 5*time.Second, func() bool { return ep.Stats().SuspicionChecks >= 1 })
	if st := ep.Stats(); st.Frozen != 0 || !ep.Healthy() || w.closed.Load() {
		t.Fatalf("a member that answered the second question: frozen %d, healthy %v, connection closed %v", st.Frozen, ep.Healthy(), w.closed.Load())
	}
}
