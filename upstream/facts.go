package upstream

import "time"

// learnerState is what the checks know of whether a member is a learner.
type learnerState uint8

const (
	// learnerUnknown: not asked since the check's connection was made.
	learnerUnknown learnerState = iota
	// isVoter: a voting member, or taken for one because nothing it
	// serves can tell (neither /readyz's non_learner nor Status).
	isVoter
	// isLearner: /readyz or Status says so.
	isLearner
)

// presence is whether a member serves one of etcd's endpoints, as far as
// the checks know.
type presence uint8

const (
	presenceUnknown presence = iota
	present
	absent
)

// progress is how far a member had applied its log, and when that was
// read: its Status.
type progress struct {
	applied uint64
	at      time.Time
}

// memberFacts is what the etcd check knows of a member beside whether it
// passes: what keeps a healthy member from clients (being a learner, an
// alarm), how long it has been without a leader, how far it has applied,
// and which of etcd's endpoints it serves. The checker's goroutine builds
// them round by round (etcdRound); each verdict carries a copy, which is
// never modified.
type memberFacts struct {
	learner learnerState
	// learnerWhy is what said the member is a learner.
	learnerWhy string
	// alarms are the alarms the member reports, sorted; alarmsKnown says
	// that the last round saw them (a /readyz round doesn't).
	alarms      []string
	alarmsKnown bool
	// answered says that etcd itself answered the last round, 503
	// included: not a timeout, a refused connect or a stranger.
	answered bool
	// leaderlessSince is when a round first saw the member without a
	// leader, zero while it has one; leaderlessLong says it has been so
	// for leaderless-max.
	leaderlessSince time.Time
	leaderlessLong  bool
	// progress is zero until a Status answered.
	progress progress
	// connected says that the checks connected to the member once;
	// dropped that the gateway itself may have ended the last connection
	// (a round out of time, an answer not read to its end), so that the
	// next is no restart.
	connected, dropped bool
	// restartedAt is when the checks last had to connect anew otherwise:
	// the member restarted (its clients' connections were cut), or the
	// way to it broke. Zero until then.
	restartedAt time.Time
	// rpcs and prevRPCs are the last two readings of the member's client
	// RPCs, asked while a pool looks for a member no client uses (fill.go).
	rpcs, prevRPCs clientRPCs
	// at is when the last round started.
	at                      time.Time
	readyz, status, metrics presence
}

// carried returns the facts a new round starts from: what lasts from
// round to round, without what each round finds anew.
func (f memberFacts) carried() memberFacts {
	f.answered, f.alarmsKnown, f.leaderlessLong = false, false, false
	return f
}

// reconnected forgets what a new connection to the member may have
// changed: etcd restarted, perhaps as another version, or another member
// now serves the address (a learner added anew). A new connection after
// the first, when the gateway didn't drop the last, is a restart the pool
// hears of (restartedAt).
func (f *memberFacts) reconnected(now time.Time) {
	if f.connected && !f.dropped {
		f.restartedAt = now
	}
	f.connected, f.dropped = true, false
	f.learner, f.learnerWhy = learnerUnknown, ""
	f.readyz, f.status, f.metrics = presenceUnknown, presenceUnknown, presenceUnknown
}

// markLeaderless records that the member has no leader, at now unless it
// had none already.
func (f *memberFacts) markLeaderless(now time.Time) {
	if f.leaderlessSince.IsZero() {
		f.leaderlessSince = now
	}
}
