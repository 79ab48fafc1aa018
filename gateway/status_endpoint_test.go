package gateway

import (
	"strings"
	"testing"
	"time"
)

// TestEndpointReasons: each way an endpoint can be down, or at risk, gets
// its reason; an endpoint that is well gets none.
func TestEndpointReasons(t *testing.T) {
	ls := ListenerStatus{
		DNS: &DNSStatus{Names: []NameStatus{
			{Name: "gone.example", State: "gone"},
			{Name: "failing.example", State: "failing", Answer: Answer{LastError: "i/o timeout"}},
			{Name: "ok.example", State: "ok"},
		}},
		Endpoints: []EndpointStatus{
			{Address: "10.0.0.1:2379", State: stateInactive, Health: healthUnhealthy, CheckError: "etcd check: HTTP 503"},
			{Address: "10.0.0.2:2379", State: stateInactive, Health: healthUnreachable},
			{Address: "gone.example:2379", State: stateActive, Health: healthUnknown},
			{Address: "failing.example:2379", State: stateActive, Health: healthHealthy},
			{Address: "ok.example:2379", State: stateActive, Health: healthHealthy},
			{Address: "10.0.0.3:2379", State: stateActive, Health: healthReachable},
		},
	}
	setReasons(&ls)
	want := []string{
		"health check failed: etcd check: HTTP 503",
		"dial failed",
		"DNS: no address: gone.example is gone",
		"DNS failing: failing.example is served from its last good answer (i/o timeout)",
		"",
		"",
	}
	for i, ep := range ls.Endpoints {
		if (want[i] == "") != (ep.Reason == "") || !strings.HasPrefix(ep.Reason, want[i]) {
			t.Errorf("%s: reason %q, want %q", ep.Address, ep.Reason, want[i])
		}
	}
}

// TestEndpointChangesDateStateChanges: Since stays while the state stays
// (a new check error is no new state), moves when it changes, and starts
// anew for an endpoint that left the pool and came back.
func TestEndpointChangesDateStateChanges(t *testing.T) {
	c := newEndpointChanges()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sample := func(at time.Time, eps ...EndpointStatus) []EndpointStatus {
		ls := []ListenerStatus{{Name: "main", Endpoints: eps}}
		c.observe(ls, at)
		return ls[0].Endpoints
	}
	up := EndpointStatus{Address: "a:1", State: stateActive, Health: healthHealthy}
	down := EndpointStatus{Address: "a:1", State: stateInactive, Health: healthUnhealthy, Reason: reasonCheck + ": one"}
	downAgain := down
	downAgain.Reason = reasonCheck + ": another"

	steps := []struct {
		at    time.Time
		ep    []EndpointStatus
		since time.Time
	}{
		{t0, []EndpointStatus{up}, t0},
		{t0.Add(time.Second), []EndpointStatus{up}, t0},
		{t0.Add(2 * time.Second), []EndpointStatus{down}, t0.Add(2 * time.Second)},
		{t0.Add(3 * time.Second), []EndpointStatus{downAgain}, t0.Add(2 * time.Second)},
		{t0.Add(4 * time.Second), nil, time.Time{}},
		{t0.Add(5 * time.Second), []EndpointStatus{downAgain}, t0.Add(5 * time.Second)},
	}
	for i, s := range steps {
		got := sample(s.at, s.ep...)
		if len(got) == 0 {
			continue
		}
		if got[0].Since == nil || !got[0].Since.Equal(s.since) {
			t.Errorf("step %d: since %v, want %v", i, got[0].Since, s.since)
		}
	}
}
