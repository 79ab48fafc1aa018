package gateway

import (
	"fmt"
	"strings"
	"time"

	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// AlarmStatus is an etcd alarm every member of a listener's cluster
// reports.
type AlarmStatus struct {
	Name string `json:"name"`
	// Since is when the gateway first found every member reporting it.
	Since time.Time `json:"since"`
}

// SlowStartStatus is an endpoint's slow start.
type SlowStartStatus struct {
	// Share is the share of its new connections it takes now, from 0 to
	// 1; Ends is when it takes them all.
	Share float64   `json:"share"`
	Ends  time.Time `json:"ends"`
}

// The beginnings of EndpointStatus.Reason that etcd's own state gives.
const (
	reasonLearner    = "learner"
	reasonCatchingUp = "catching up"
	reasonAlarm      = "alarm"
	reasonSlowStart  = "slow start"
	reasonAwaiting   = "awaiting its first check"
)

// setReadiness fills what etcd's own state says of the endpoint; one that
// is healthy but kept from new connections by it is inactive.
func setReadiness(es *EndpointStatus, st upstream.EndpointStats) {
	es.Learner, es.CatchingUp, es.Alarms = st.Learner, st.CatchingUp, st.Alarms
	if st.CatchingUp {
		es.Lag = st.Lag
	}
	if !st.LeaderlessSince.IsZero() {
		since := st.LeaderlessSince
		es.LeaderlessSince = &since
	}
	if st.SlowStartShare < 1 {
		es.SlowStart = &SlowStartStatus{Share: st.SlowStartShare, Ends: st.SlowStartEnds}
	}
	if es.State == stateActive && !st.Up() {
		es.State = stateInactive
	}
	es.learnerWhy, es.localAlarm, es.awaitingCheck = st.LearnerWhy, st.LocalAlarm, st.AwaitingCheck
	es.SuspicionChecks, es.Frozen = st.SuspicionChecks, st.Frozen
}

// readinessReason is why etcd's own state keeps a healthy endpoint from
// new connections, or gives it fewer; "" when it doesn't.
func readinessReason(ep *EndpointStatus) string {
	switch {
	case ep.Learner:
		return reasonLearner + ": no clients until it is promoted (" + ep.learnerWhy + ")"
	case ep.CatchingUp:
		return fmt.Sprintf("%s: %d raft entries behind the cluster at the last measure; no clients until within health-check.lag-max", reasonCatchingUp, ep.Lag)
	case ep.awaitingCheck:
		return reasonAwaiting + ": it joined, and whether it is a learner is unknown until its first check reports; no clients unless no endpoint is up"
	case ep.localAlarm:
		return reasonAlarm + ": it reports " + strings.Join(ep.Alarms, ", ") + ", which the other members don't: no clients until that ends"
	case ep.SlowStart != nil:
		return fmt.Sprintf("%s: it came back and takes %.0f%% of its share of new connections, all of it from %s",
			reasonSlowStart, 100*ep.SlowStart.Share, ep.SlowStart.Ends.Format(time.RFC3339))
	}
	return ""
}

// alarmStatus turns a pool's cluster-wide alarms into /status's.
func alarmStatus(alarms []upstream.ClusterAlarm) []AlarmStatus {
	var out []AlarmStatus
	for _, a := range alarms {
		out = append(out, AlarmStatus{Name: a.Name, Since: a.Since})
	}
	return out
}
