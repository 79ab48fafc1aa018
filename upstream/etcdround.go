package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// etcdRound is one etcd check of a member, run by the checker's
// goroutine: /health for the verdict, as on every etcd version, and the
// other questions only while one is open, so that a member in its steady
// state gets one request per interval:
//
//   - is it a learner: asked on a new connection (a restart may have
//     brought another member), of /readyz's non_learner where it has it,
//     else of Status, and every round while it is one (promotion shows
//     within an interval);
//   - which alarms: /health names the first; Status lists them all, and
//     while there are some /health leaves them out (?exclude), so that its
//     answer is about the member itself;
//   - why /health failed, when it doesn't say (3.4 without a reason), and
//     how far the member has applied, while a pool waits for a returning
//     member to catch up: Status.
type etcdRound struct {
	c *checker
	f memberFacts
	// alarmOnly says that /health failed for an alarm, and for nothing
	// else it could see: that is no failure of the member.
	alarmOnly bool
	// unclassified says that /health failed without saying why.
	unclassified bool
	healthFailed bool
	statusAsked  bool
}

// etcdRound runs one round and returns why the member fails, or nil; its
// facts wait in c.next for record.
func (c *checker) etcdRound(ctx context.Context) error {
	r := &etcdRound{c: c, f: c.facts.carried()}
	r.f.at = time.Now()
	err := r.run(ctx)
	if ctx.Err() != nil {
		r.f.dropped = true // a request cut short closes its connection
	}
	c.next = r.f
	return err
}

func (r *etcdRound) run(ctx context.Context) error {
	if r.f.learner == isLearner {
		if told, err := r.learnerRound(ctx); told {
			return r.verdict(err)
		}
	}
	err := r.health(ctx)
	if r.f.learner == learnerUnknown && r.f.answered {
		r.askLearner(ctx)
	}
	if r.needStatus() {
		_ = r.askStatus(ctx)
	}
	if r.f.answered && r.f.metrics != absent && r.c.rpcsWanted.now() {
		r.askClientRPCs(ctx)
	}
	return r.verdict(err)
}

// verdict is err, the round's failure, with the leaderless spell named
// once it has lasted leaderless-max, and nil when an alarm was all.
func (r *etcdRound) verdict(err error) error {
	if since := r.f.leaderlessSince; !since.IsZero() && err != nil {
		max := r.c.key.hc.LeaderlessMax
		if d := time.Since(since); d >= max {
			r.f.leaderlessLong = true
			err = fmt.Errorf("no leader for %s (leaderless-max %s): %w", d.Round(time.Millisecond), max, err)
		}
	}
	if r.alarmOnly {
		return nil
	}
	return err
}

// needStatus reports whether the round should ask Status: an alarm to
// follow, a failure to explain, or a pool waiting for a catch-up.
func (r *etcdRound) needStatus() bool {
	if r.statusAsked || r.f.status == absent || !r.f.answered {
		return false
	}
	return r.unclassified || r.alarmOnly || len(r.f.alarms) > 0 || r.c.statusWanted.now()
}

// do sends req on the checker's client. A new connection to the member
// makes the round forget what a restart may have changed.
func (r *etcdRound) do(req *http.Request) (*http.Response, error) {
	var fresh atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { fresh.Store(!i.Reused) }}
	resp, err := r.c.client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if fresh.Load() {
		r.f.reconnected(time.Now())
	}
	return resp, err
}

// ask sends one request of the round to the member's path (a JSON body
// when body isn't empty) and reads up to limit bytes of the answer.
func (r *etcdRound) ask(ctx context.Context, method, path, body string, limit int64) (int, []byte, error) {
	u := r.c.key.tls.scheme() + "://" + r.c.key.addr + path
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("etcd check: %w", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("etcd check: %s %s: %w", method, path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if int64(len(answer)) == limit {
		r.f.dropped = true // the rest unread: the connection is closed
	}
	if err != nil {
		return 0, nil, fmt.Errorf("etcd check: %s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, answer, nil
}

// health asks /health, leaving out the alarms the member is known to
// report when Status follows them, and learns what the answer says of the
// leader and the alarms. It returns why the member fails.
func (r *etcdRound) health(ctx context.Context) error {
	query, excluded := r.exclusions()
	path := healthPath + query
	u := r.c.key.tls.scheme() + "://" + r.c.key.addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("etcd check: %w", err)
	}
	resp, err := r.do(req)
	if err != nil {
		if ctx.Err() == nil {
			r.f.leaderlessSince = time.Time{} // refused, not stuck: gone, not leaderless
		}
		return fmt.Errorf("etcd check: GET %s: %w%s", path, unwrapURLError(err), eofHint(r.c.key.tls.scheme(), err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil {
		return fmt.Errorf("etcd check: GET %s: reading the answer: %w", path, err)
	}
	var h etcdHealth
	if json.Unmarshal(body, &h) == nil && h.Health != "" {
		r.learnHealth(h, excluded)
	}
	return healthAnswer(path, resp.StatusCode, body)
}

// exclusions returns the ?exclude= query for each alarm the member is
// known to report, while Status can tell when they clear, and those
// alarms; "" and none otherwise.
func (r *etcdRound) exclusions() (string, []string) {
	if r.f.status != present || len(r.f.alarms) == 0 {
		return "", nil
	}
	q := url.Values{"exclude": r.f.alarms}
	return "?" + q.Encode(), r.f.alarms
}

// learnHealth records what a /health answer says, the alarms excluded
// left out of it. etcd checks the alarms first, then the leader, then a
// read, and names the first that fails.
func (r *etcdRound) learnHealth(h etcdHealth, excluded []string) {
	r.f.answered = true
	r.f.alarms, r.f.alarmsKnown = excluded, true
	r.healthFailed = h.Health != "true"
	switch name, isAlarm := strings.CutPrefix(h.Reason, "ALARM "); {
	case !r.healthFailed:
		r.f.leaderlessSince = time.Time{}
	case isAlarm:
		r.alarmOnly = true
		r.f.alarms = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(excluded), name))))
	case h.Reason == "RAFT NO LEADER":
		r.f.markLeaderless(time.Now())
	case h.Reason == "":
		r.unclassified, r.f.alarmsKnown = true, false
	default: // the read failed: the leader is there
		r.f.leaderlessSince = time.Time{}
	}
}

// askLearner learns whether the member is a learner: from /readyz's
// non_learner where it has it, else from Status. A member that serves
// neither is taken for a voter, as etcd's gateway takes every member.
func (r *etcdRound) askLearner(ctx context.Context) {
	if r.f.readyz != absent && r.learnerFromReadyz(ctx) {
		return
	}
	if r.f.status != absent {
		if err := r.askStatus(ctx); !errors.Is(err, errNoStatus) {
			return // told, or to be asked again next round
		}
	}
	r.f.learner = isVoter
}

// learnerFromReadyz asks /readyz and reports whether the question is
// settled for this round: answered, or a failure that makes the rest
// wait for the next round.
func (r *etcdRound) learnerFromReadyz(ctx context.Context) bool {
	rz, err := r.getReadyz(ctx)
	switch {
	case errors.Is(err, errNoReadyz):
		r.f.readyz = absent
		return false
	case err != nil:
		return true
	}
	r.f.readyz = present
	return r.learnReadyz(rz)
}

// learnReadyz records what /readyz says of the learner question, and
// reports whether it says anything (before 3.5.19 it has no non_learner).
func (r *etcdRound) learnReadyz(rz readyz) bool {
	c, ok := rz.find(nonLearner)
	if !ok {
		return false
	}
	r.f.learner, r.f.learnerWhy = isVoter, ""
	if !c.ok {
		r.f.learner, r.f.learnerWhy = isLearner, fmt.Sprintf("GET %s: [-]%s failed: %s", readyzPath, nonLearner, c.reason)
	}
	return true
}

// learnerRound checks a known learner by asking only whether it still is
// one, which also shows that it answers. It reports whether it could
// tell; when it can't, the round goes on as for any member.
func (r *etcdRound) learnerRound(ctx context.Context) (told bool, err error) {
	if r.f.readyz == present {
		rz, err := r.getReadyz(ctx)
		switch {
		case errors.Is(err, errNoReadyz):
			r.f.readyz = absent
		case err != nil:
			return true, err
		case r.learnReadyz(rz):
			r.f.readyz, r.f.answered = present, true
			return true, rz.err()
		}
	}
	if r.f.status != absent {
		if err := r.askStatus(ctx); !errors.Is(err, errNoStatus) {
			return true, err
		}
	}
	r.f.learner = learnerUnknown
	return false, nil
}

// askStatus asks Status and records what it says: whether the member is
// a learner, its alarms, its leader, how far it has applied.
func (r *etcdRound) askStatus(ctx context.Context) error {
	r.statusAsked = true
	s, err := r.getStatus(ctx)
	if errors.Is(err, errNoStatus) {
		r.f.status = absent
	}
	if err != nil {
		return err
	}
	r.f.status, r.f.answered = present, true
	r.learnStatus(s)
	return nil
}

// learnStatus records a Status answer.
func (r *etcdRound) learnStatus(s memberStatus) {
	now := time.Now()
	r.f.learner, r.f.learnerWhy = isVoter, ""
	if s.learner {
		r.f.learner, r.f.learnerWhy = isLearner, "Status: is_learner"
	}
	r.f.alarms, r.f.alarmsKnown = s.alarms, true
	if s.applied > 0 {
		r.f.progress = progress{applied: s.applied, at: now}
	}
	switch {
	case s.leader != 0:
		r.f.leaderlessSince = time.Time{}
	case r.healthFailed:
		r.f.markLeaderless(now)
	}
	if r.unclassified && len(s.alarms) > 0 {
		r.alarmOnly = true // /health checks the alarms first
	}
}
