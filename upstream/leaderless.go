package upstream

import (
	"time"

	"github.com/sirupsen/logrus"
)

// nextDue is when the check after the one that started at start is due:
// an interval later, or sooner when the member was found without a leader
// and leaderless-max runs out first, so that a long interval doesn't
// stretch the leaderless bound.
func (c *checker) nextDue(start time.Time) time.Time {
	due := start.Add(c.key.hc.Interval)
	since := c.facts.leaderlessSince
	if since.IsZero() || c.facts.leaderlessLong {
		return due
	}
	if bound := since.Add(c.key.hc.LeaderlessMax); bound.Before(due) {
		return bound
	}
	return due
}

// leaderlessSpell reports whether v begins a leaderless spell of
// leaderless-max for ep in this pool: once per spell, the pool applies its
// on-unhealthy to ep's connections again, for the clients that came to it
// while nothing else was up. A leader back ends the spell.
func (p *Pool) leaderlessSpell(ep *Endpoint, v verdict, log logrus.FieldLogger) bool {
	if !v.facts.leaderlessLong {
		if v.facts.leaderlessSince.IsZero() {
			ep.leaderlessClosed.Store(false)
		}
		return false
	}
	if !ep.leaderlessClosed.CompareAndSwap(false, true) {
		return false
	}
	log.WithFields(logrus.Fields{"since": v.facts.leaderlessSince, "leaderless-max": v.hc.LeaderlessMax}).Warn("endpoint without a leader for leaderless-max")
	return true
}
