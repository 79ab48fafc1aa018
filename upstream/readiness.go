package upstream

import (
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// readiness is an endpoint's share of etcd's own state, as its checks
// report it to the pool: reasons for a healthy member to take no new
// connections, and its slow start. The fields are atomics, so that the
// pick reads them without a lock; the pool's verdicts write them.
type readiness struct {
	// learner, catchingUp and localAlarm each keep the endpoint from new
	// connections; a learner is not even a last resort.
	learner, catchingUp, localAlarm atomic.Bool
	// learnerWhy is what said it is a learner.
	learnerWhy atomic.Pointer[string]
	// facts are the last member facts its checker gave the pool.
	facts atomic.Pointer[memberFacts]
	// catchUpSince is when it began catching up, in Unix nanoseconds;
	// catchUpCompared when its applied index was last compared with the
	// others' (or it began), which a catch-up that can't compare waits
	// catchUpWait intervals from; lag how many raft entries it was behind
	// at the last measure.
	catchUpSince, catchUpCompared atomic.Int64
	lag                           atomic.Uint64
	// alarmApart is since when (Unix nanoseconds) it has reported an alarm
	// the other members don't; 0 when it doesn't.
	alarmApart atomic.Int64
	// slowStart is its slow start; nil when none runs.
	slowStart atomic.Pointer[slowStartWindow]
	// leaderlessClosed says that its connections were closed for the
	// leaderless spell it is in.
	leaderlessClosed atomic.Bool
	// awaiting says that it joined a running pool whose check can tell a
	// learner and that no check has reported on it yet: until one does,
	// it could be a learner named in the list, so it takes new
	// connections only when no endpoint is up.
	awaiting atomic.Bool
}

// ready reports whether nothing of etcd's own state keeps the endpoint
// from new connections.
func (r *readiness) ready() bool {
	return !r.learner.Load() && !r.catchingUp.Load() && !r.localAlarm.Load() && !r.awaiting.Load()
}

// forgetReadiness drops what the checks said: they stopped, or the
// endpoint was revived.
func (r *readiness) forgetReadiness() {
	r.learner.Store(false)
	r.learnerWhy.Store(nil)
	r.catchingUp.Store(false)
	r.localAlarm.Store(false)
	r.facts.Store(nil)
	r.alarmApart.Store(0)
	r.slowStart.Store(nil)
	r.leaderlessClosed.Store(false)
	r.awaiting.Store(false)
}

// Readiness is what etcd's own state says of a member, in an
// EndpointStats: why a healthy endpoint takes no new connections, or
// fewer.
type Readiness struct {
	// Learner says the member is a learner; LearnerWhy what said so.
	Learner    bool
	LearnerWhy string
	// CatchingUp says it came back and is being held until its applied
	// index is within lag-max of the cluster's; Lag is how many raft
	// entries it was behind at the last measure.
	CatchingUp bool
	Lag        uint64
	// Alarms are the alarms it reports; LocalAlarm says that another
	// member has not reported one of them for a while (an alarm of its
	// own, unlike a cluster-wide one).
	Alarms     []string
	LocalAlarm bool
	// LeaderlessSince is when its checks first found it without a
	// leader; zero while it has one.
	LeaderlessSince time.Time
	// SlowStartShare is the share of its new connections it takes now, 1
	// outside a slow start; SlowStartEnds is when its slow start ends.
	SlowStartShare float64
	SlowStartEnds  time.Time
	// AwaitingCheck says it joined a running pool and its first check has
	// not reported yet: whether it is a learner is unknown until then.
	AwaitingCheck bool
}

// readinessNow returns the endpoint's Readiness at now.
func (r *readiness) readinessNow(now time.Time) Readiness {
	out := Readiness{
		Learner: r.learner.Load(), CatchingUp: r.catchingUp.Load(), LocalAlarm: r.localAlarm.Load(),
		Lag: r.lag.Load(), SlowStartShare: 1, AwaitingCheck: r.awaiting.Load(),
	}
	if why := r.learnerWhy.Load(); why != nil {
		out.LearnerWhy = *why
	}
	if f := r.facts.Load(); f != nil {
		out.Alarms, out.LeaderlessSince = f.alarms, f.leaderlessSince
	}
	if w := r.slowStart.Load(); w != nil && now.Before(w.end) {
		out.SlowStartShare, out.SlowStartEnds = w.share(now), w.end
	}
	return out
}

// applyFacts takes the member facts of a verdict about ep: whether it
// restarted (a member back at once may fail fewer than fall checks, or
// none, and has lost its clients all the same), whether it is a learner (before the first verdict of a joining endpoint lets it be
// picked, so that a learner never is), the alarms (of the whole pool: whether they are
// cluster-wide), and the catch-ups waiting for Status.
func (p *Pool) applyFacts(ep *Endpoint, v verdict, log logrus.FieldLogger) {
	f := v.facts
	prev := ep.facts.Swap(&f)
	if prev != nil && !f.restartedAt.Equal(prev.restartedAt) && ep.healthy.Load() {
		log.Info("endpoint restarted: its check had to connect anew")
		p.returned(ep)
	}
	p.setLearner(ep, f.learner, f.learnerWhy, log)
	if ep.awaiting.Swap(false) {
		log.Debug("first health check of the joining endpoint reported")
	}
	p.observeAlarms(2 * v.hc.Interval)
	p.checkCatchUp()
}

// setLearner bars a learner from new connections, and applies the pool's
// on-unhealthy to the connections it has (it refuses their requests); a
// promoted one takes connections again. Not knowing changes nothing; why
// is what said it is one.
func (p *Pool) setLearner(ep *Endpoint, state learnerState, why string, log logrus.FieldLogger) {
	if state == learnerUnknown {
		return
	}
	is := state == isLearner
	if is {
		ep.learnerWhy.Store(&why)
	}
	if ep.learner.Swap(is) == is {
		return
	}
	if !is {
		ep.learnerWhy.Store(nil)
		log.Info("endpoint promoted from learner: it takes new connections")
		return
	}
	log.WithField("reason", why).Warn("endpoint is a learner: no new connections until it is promoted")
	p.onUnhealthy(ep, log)
}

// learnersFromMembers takes, from the member list member sync read, which
// endpoints are learners, for those whose checks can't tell (a tcp check,
// or none): /readyz and Status, where the check asks them, are the
// member's own word and win. The caller holds updateMu.
func (p *Pool) learnersFromMembers(members []member) {
	byAddr := map[string]member{}
	for _, m := range members {
		for _, raw := range m.ClientURLs {
			if re, ok := clientURLEndpoint(raw); ok {
				byAddr[re.Addr] = m
			}
		}
	}
	for _, ep := range p.Endpoints() {
		m, ok := byAddr[ep.addr]
		if f := ep.facts.Load(); !ok || (f != nil && f.learner != learnerUnknown) {
			continue
		}
		state := isVoter
		if m.IsLearner {
			state = isLearner
		}
		p.setLearner(ep, state, "MemberList: is_learner", p.log.WithField("endpoint", ep.addr))
	}
}
