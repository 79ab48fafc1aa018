package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// versionPath is what the check on suspicion asks: etcd's HTTP server
// answers GET /version from memory, on every etcd version, without raft
// or the disk, so an answer says that the process runs, however loaded
// the member is. /health and /readyz read through raft, and a member
// applying big writes may take longer than suspect-after to answer them:
// that is slowness, which the checks of the interval judge, not a freeze.
const versionPath = "/version"

// suspicion is a checker's check on suspicion: a member that owes a
// proxied connection an answer for suspect-after is asked at once, with
// suspect-after as the timeout, whether its process answers at all. It
// runs in the sweep's goroutine, beside the checks of every interval,
// which keep their schedule, timeout, fall and rise: a healthy member
// that owes nothing sees no more checks.
type suspicion struct {
	// client asks /version on a connection of its own, so that a check of
	// the interval that holds the checker's connection doesn't delay it,
	// and so that its connections don't look like the member's restarts
	// to the etcd check (etcdRound.do).
	client *http.Client
	// clearedBefore is a time in Unix nanoseconds: a connection waiting
	// since before it is no evidence, as the member answered a check that
	// started later (a Lock, a watch, a ping ack waits so, and must not
	// cost a check each sweep).
	clearedBefore atomic.Int64
	// last is when the sweep last checked on suspicion. Only the sweep's
	// goroutine touches it.
	last time.Time
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
// done, and checks on suspicion in its own goroutine.
func (c *checker) sweep(ctx context.Context) {
	t := time.NewTicker(c.key.hc.sweepEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.sweepOnce(ctx, now)
		}
	}
}

// sweepOnce checks on suspicion when a connection has waited
// suspect-after for an answer and no check on suspicion ran within the
// gap.
func (c *checker) sweepOnce(ctx context.Context, now time.Time) {
	if !c.isHealthy() {
		return // already down: the checks of the interval bring it back
	}
	if _, owed := c.owed(now); !owed || now.Sub(c.suspect.last) < c.key.hc.suspicionGap() {
		return
	}
	c.suspect.last = now
	start := time.Now()
	err := c.askAlive(ctx, c.key.hc.SuspectAfter)
	why, frozen := c.frozen(start, err)
	if frozen && c.askAlive(ctx, c.key.hc.SuspectAfter/2) == nil {
		// A pause of this process (or of the member's) delayed the first
		// answer, and the member answers the second: a frozen member
		// answers neither.
		err, why, frozen = nil, "", false
	}
	c.recordSuspicion(ctx, start, err == nil, why, frozen)
}

// askAlive asks the member's process whether it answers, within
// timeout: GET /version, where any HTTP answer will do (the
// question is not whether the member is ready), or a TLS handshake when
// the etcd check of the member fell back to one.
func (c *checker) askAlive(ctx context.Context, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.fellBack.Load() {
		return c.checkHandshake(cctx)
	}
	u := c.key.tls.scheme() + "://" + c.key.addr + versionPath
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("check on suspicion: %w", err)
	}
	resp, err := c.suspect.client.Do(req)
	if err != nil {
		return fmt.Errorf("check on suspicion: GET %s: %w", versionPath, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody)); err != nil {
		return fmt.Errorf("check on suspicion: GET %s: reading the answer: %w", versionPath, err)
	}
	return nil
}

// recordSuspicion counts a check on suspicion that started at start. An
// answer clears the connections that waited before it; a frozen verdict
// (why) marks the member down at once, whatever fall says, and counts as
// a failed check, so that rise checks of the interval bring it back. Any
// other failure is left to the checks of the interval.
func (c *checker) recordSuspicion(ctx context.Context, start time.Time, answered bool, why string, frozen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil {
		return // stopped meanwhile
	}
	if answered {
		c.cleared(start)
	}
	if frozen {
		c.checked, c.healthy, c.reason = true, false, why
		c.count(false)
	}
	v := c.verdictLocked(true)
	for ep, s := range c.subs {
		ep.suspicions.observe(frozen)
		if frozen {
			ep.timings.observeCheck(start, errors.New(why))
			s.setStatus(ep, v)
		}
	}
}

// owed returns since when the member has owed an answer to a connection of
// any endpoint it checks, and whether that has lasted suspect-after;
// connections cleared by a later answered check don't count.
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

// frozen reports whether a check on suspicion that started at start and
// failed with err shows the member frozen: its process left the question
// unanswered for suspect-after, and a connection still waits for an
// answer as long. The reason says so.
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
	return fmt.Sprintf("frozen: the process left the check on suspicion unanswered for %s while bytes sent to the member have waited %s (suspect-after %s): %v",
		now.Sub(start).Round(time.Millisecond), now.Sub(since).Round(time.Millisecond), hc.SuspectAfter, err), true
}

// cleared records that the member answered a check that started at
// start: connections waiting since before it are no evidence any more.
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

// observe counts one check on suspicion, and whether it found the member
// frozen.
func (s *suspicionCounts) observe(frozen bool) {
	s.checks.Add(1)
	if frozen {
		s.frozen.Add(1)
	}
}
