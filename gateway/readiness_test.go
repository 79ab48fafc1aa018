package gateway

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// endpointStatus returns the /status of an endpoint of listener main.
func endpointStatus(t *testing.T, adminAddr, addr string) EndpointStatus {
	t.Helper()
	for _, ep := range status(t, adminAddr).Listeners[0].Endpoints {
		if ep.Address == addr {
			return ep
		}
	}
	t.Fatalf("no endpoint %s in /status", addr)
	return EndpointStatus{}
}

// TestLearnerGetsNoClients is issue 25, item 2: a learner listed among a
// round-robin listener's static endpoints (measured before: 3 puts of 12
// failed with "rpc not supported for learner") gets no client, so every
// put succeeds; /status says why. Promoted, it takes clients within one
// check interval.
func TestLearnerGetsNoClients(t *testing.T) {
	c := testutil.Cluster(t, 1)
	li, err := c.AddLearner()
	if err != nil {
		t.Fatal(err)
	}
	voter, learner := c.Members[0].ClientAddr(), c.Members[li].ClientAddr()
	dir := t.TempDir()
	addr, adminAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	// A timeout the loaded machine of a CI run meets: a check that times
	// out marks the member down (fall: 1), and it would get no client.
	const interval = 500 * time.Millisecond
	extra := "    policy: round-robin\n    health-check: {type: etcd, interval: 500ms, timeout: 500ms, fall: 1, rise: 1}\n"
	startHarness(t, dir, filepath.Join(dir, "gw.yaml"),
		withAdmin(adminAddr, "", render(listenerSpec{name: "main", addr: addr, endpoints: []string{voter, learner}, extra: extra})))
	testutil.WaitFor(t, "the learner in /status", 10*time.Second, func() bool { return endpointStatus(t, adminAddr, learner).Learner })
	ep := endpointStatus(t, adminAddr, learner)
	if ep.State != "inactive" || ep.Health != "healthy" || !strings.HasPrefix(ep.Reason, "learner: ") || !strings.Contains(ep.Reason, "non_learner failed") {
		t.Fatalf("the learner in /status: %+v", ep)
	}

	for i := range 12 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := testutil.Client(t, addr).Put(ctx, fmt.Sprintf("k%d", i), "v")
		cancel()
		if err != nil {
			t.Fatalf("put %d through the gateway with a learner listed: %v", i, err)
		}
	}
	if n := endpointStatus(t, adminAddr, learner).TotalConnections; n != 0 {
		t.Fatalf("the learner got %d connections", n)
	}

	if err := c.Promote(li); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	testutil.WaitFor(t, "the promoted learner to take clients", 10*time.Second, func() bool {
		return endpointStatus(t, adminAddr, learner).State == "active"
	})
	// Within one interval, with two of slack for a loaded machine.
	if took := time.Since(promoted); took > 3*interval {
		t.Errorf("the promoted learner took clients after %s, want within one interval (%s)", took, interval)
	}
	i := 0
	testutil.WaitFor(t, "a client through round-robin on the promoted learner", 10*time.Second, func() bool {
		getValue(t, addr, fmt.Sprintf("k%d", i%12))
		i++
		return endpointStatus(t, adminAddr, learner).TotalConnections > 0
	})
}

// TestClusterAlarmKeepsServing is issue 25, item 3, through a running
// gateway: a cluster with a tiny backend quota filled until NOSPACE
// (which fails /health on every member) keeps every member up, reads
// through the gateway are served, /healthz answers 200, and /status, the
// status page and etcd_gateway_cluster_alarm name the alarm and since
// when.
func TestClusterAlarmKeepsServing(t *testing.T) {
	c := testutil.ClusterWithOptions(t, 3, etcdtest.Options{QuotaBackendBytes: 96 << 10})
	put(t, c, "k", "v")
	dir := t.TempDir()
	addr, adminAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	// A timeout the loaded machine of a CI run meets: with fall: 1 one
	// check that times out would mark a member down.
	extra := "    health-check: {type: etcd, interval: 500ms, timeout: 500ms, fall: 1, rise: 1}\n"
	startHarness(t, dir, filepath.Join(dir, "gw.yaml"),
		withAdmin(adminAddr, "", render(listenerSpec{name: "main", addr: addr, endpoints: c.ClientAddrs(), extra: extra})))
	testutil.FillUntilNoSpace(t, testutil.Client(t, c.ClientAddrs()[0]))
	filled := time.Now()

	var ls ListenerStatus
	testutil.WaitFor(t, "NOSPACE in /status", 10*time.Second, func() bool {
		ls = status(t, adminAddr).Listeners[0]
		return len(ls.ClusterAlarms) == 1 && ls.ClusterAlarms[0].Name == "NOSPACE"
	})
	since := ls.ClusterAlarms[0].Since
	if since.Before(filled.Add(-time.Second)) || since.After(time.Now()) {
		t.Errorf("the alarm is dated %s, filled at %s", since, filled)
	}
	for range 5 {
		if got := getValue(t, addr, "k"); got != "v" {
			t.Fatalf("read %q through the gateway under NOSPACE", got)
		}
	}
	st := status(t, adminAddr)
	for _, ep := range st.Listeners[0].Endpoints {
		if ep.State != "active" || len(ep.Alarms) != 1 || ep.Alarms[0] != "NOSPACE" {
			t.Errorf("endpoint under a cluster-wide alarm: %+v", ep)
		}
	}
	if code, body := testutil.Get(t, adminAddr, "/healthz"); code != http.StatusOK || !st.Healthy {
		t.Errorf("/healthz under a cluster-wide alarm: %d %s", code, body)
	}
	m := scrape(t, adminAddr)
	if v, ok := m.value("etcd_gateway_cluster_alarm", "listener", "main", "alarm", "NOSPACE"); !ok || int64(v) != since.Unix() {
		t.Errorf("etcd_gateway_cluster_alarm{NOSPACE} = %v (present %v), want %d", v, ok, since.Unix())
	}
	for _, a := range c.ClientAddrs() {
		m.expect(t, 1, "etcd_gateway_endpoint_up", "listener", "main", "endpoint", a)
	}
	row := one(t, page(t, adminAddr, "/"), "the alarm row", func(n *html.Node) bool {
		return n.Data == "tr" && hasClass(n, "listener-alarm") && attr(n, "data-alarm") == "NOSPACE"
	})
	if !hasClass(row, "warn") || !strings.Contains(text(row), "cluster alarm NOSPACE since") {
		t.Errorf("the status page's alarm row: %q", text(row))
	}
}
