package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// errSuspected ends a check that has waited suspect-after for its answer
// while clients' bytes wait for theirs: the member owes both.
var errSuspected = errors.New("no answer within suspect-after while clients' bytes wait for one")

// suspicion is a checker's check on suspicion: a member that owes a
// proxied connection an answer for suspect-after is checked at once, with
// suspect-after as the timeout, rather than at the next interval. The
// checks of every interval stay as they are, so a healthy member that owes
// nothing sees no more of them.
type suspicion struct {
	// wake asks the checker's goroutine for a check on suspicion.
	wake chan struct{}
	// clearedBefore is a time in Unix nanoseconds: a connection waiting
	// since before it is no evidence, as a check that started later
	// passed (a Lock, a watch, a ping ack waits so, and must not cost a
	// check each sweep).
	clearedBefore atomic.Int64
	// inflight is the check running now; nil between checks.
	inflight atomic.Pointer[inflightCheck]
	// last is when the sweep last asked for a check. Only the sweep's
	// goroutine touches it.
	last time.Time
}

// inflightCheck is a running check, which the sweep may end early.
type inflightCheck struct {
	start time.Time
	cut   context.CancelCauseFunc
}

// suspects reports whether the checks of h check on suspicion: only the
// etcd check does, as a connect succeeds on a frozen member.
func (h HealthCheck) suspects() bool {
	return h.Type == config.CheckEtcd && h.SuspectAfter > 0
}

// sweepEvery is how often the connections are looked at: a fraction of
// suspect-after, so that a suspicion is acted on soon after it is due,
// and never so often that a sweep's walk over the connections adds up.
func (h HealthCheck) sweepEvery() time.Duration {
	return min(max(h.SuspectAfter/4, 10*time.Millisecond), 250*time.Millisecond)
}

// suspicionGap is the least time between two checks on suspicion of a
// member: what a pattern of traffic that keeps looking stuck can cost.
func (h HealthCheck) suspicionGap() time.Duration { return 2 * h.SuspectAfter }

// sweep looks at the member's connections every sweepEvery until ctx is
// done.
func (c *checker) sweep(ctx context.Context) {
	t := time.NewTicker(c.key.hc.sweepEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.sweepOnce(now)
		}
	}
}

// sweepOnce acts on a suspicion: it ends a check that has already waited
// suspect-after for its answer, or asks for a check at once when none
// runs and none on suspicion ran within the gap.
func (c *checker) sweepOnce(now time.Time) {
	if !c.isHealthy() {
		return // already down: the checks of the interval bring it back
	}
	if _, owed := c.owed(now); !owed {
		return
	}
	if in := c.suspect.inflight.Load(); in != nil {
		if now.Sub(in.start) >= c.key.hc.SuspectAfter {
			in.cut(errSuspected)
		}
		return
	}
	if now.Sub(c.suspect.last) < c.key.hc.suspicionGap() {
		return
	}
	c.suspect.last = now
	select {
	case c.suspect.wake <- struct{}{}:
	default:
	}
}

// owed returns since when the member has owed an answer to a connection of
// any endpoint it checks, and whether that has lasted suspect-after;
// connections cleared by a later passing check don't count.
func (c *checker) owed(now time.Time) (time.Time, bool) {
	cleared := time.Unix(0, c.suspect.clearedBefore.Load())
	var oldest time.Time
	for _, ep := range c.endpoints() {
		if t := ep.oldestUnanswered(cleared); !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	return oldest, !oldest.IsZero() && now.Sub(oldest) >= c.key.hc.SuspectAfter
}

// isHealthy is the shared verdict.
func (c *checker) isHealthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.healthy
}

// endpoints returns the endpoints that hear the checker.
func (c *checker) endpoints() []*Endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := make([]*Endpoint, 0, len(c.subs))
	for ep := range c.subs {
		eps = append(eps, ep)
	}
	return eps
}

// oldestUnanswered returns the earliest time after after since which one
// of ep's connections has waited for an answer; zero when none has.
func (ep *Endpoint) oldestUnanswered(after time.Time) time.Time {
	var oldest time.Time
	ep.conns.Range(func(k, _ any) bool {
		t := k.(*tracked).c.Unanswered()
		if t.After(after) && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
		return true
	})
	return oldest
}

// frozen reports whether a check that started at start and failed with err
// shows the member frozen: it waited suspect-after without an answer,
// and a connection still waits for one as long. The reason says so.
func (c *checker) frozen(start time.Time, err error) (string, bool) {
	hc := c.key.hc
	now := time.Now()
	if err == nil || !hc.suspects() || now.Sub(start) < hc.SuspectAfter {
		return "", false
	}
	since, owed := c.owed(now)
	if !owed {
		return "", false
	}
	return fmt.Sprintf("frozen: no answer to the check for %s while bytes sent to the member have waited %s (suspect-after %s): %v",
		now.Sub(start).Round(time.Millisecond), now.Sub(since).Round(time.Millisecond), hc.SuspectAfter, err), true
}

// cleared records that a check that started at start passed: connections
// waiting since before it are no evidence any more.
func (c *checker) cleared(start time.Time) {
	ns := start.UnixNano()
	for {
		old := c.suspect.clearedBefore.Load()
		if old >= ns || c.suspect.clearedBefore.CompareAndSwap(old, ns) {
			return
		}
	}
}

// suspicionCounts are an endpoint's counts of checks on suspicion and of
// frozen verdicts, for the status and the metrics.
type suspicionCounts struct{ checks, frozen atomic.Uint64 }

func (s *suspicionCounts) observe(r checkResult) {
	if r.onSuspicion {
		s.checks.Add(1)
	}
	if r.frozen {
		s.frozen.Add(1)
	}
}
