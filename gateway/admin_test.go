package gateway

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// closableEcho is an echo server that can be stopped, after which dials
// to its address are refused.
func closableEcho(t *testing.T) (addr string, stop func()) {
	s := testutil.Echo(t)
	return s.Addr, s.Close
}

// withAdmin prefixes a config file with admin keys.
func withAdmin(adminAddr, extra, text string) string {
	return "admin-addr: " + adminAddr + "\n" + extra + text
}

// metrics is one scrape of /metrics, parsed.
type metrics map[string]*dto.MetricFamily

func scrape(t *testing.T, adminAddr string) metrics {
	t.Helper()
	code, body := testutil.Get(t, adminAddr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of name whose labels include
// labels ("k", "v", ...), and whether there is one.
func (m metrics) value(name string, labels ...string) (float64, bool) {
	fam, ok := m[name]
	if !ok {
		return 0, false
	}
	for _, s := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range s.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// has reports whether any series of name has the label k=v.
func (m metrics) has(name, k, v string) bool {
	_, ok := m.value(name, k, v)
	return ok
}

// expect fails the test unless the series has the value want.
func (m metrics) expect(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := m.value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	if got != want {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// waitMetric polls /metrics until the series has the value want.
func waitMetric(t *testing.T, adminAddr string, want float64, name string, labels ...string) metrics {
	t.Helper()
	var m metrics
	testutil.WaitFor(t, fmt.Sprintf("%s%v = %v", name, labels, want), 5*time.Second, func() bool {
		m = scrape(t, adminAddr)
		v, ok := m.value(name, labels...)
		return ok && v == want
	})
	return m
}

func TestMetricsFollowConnectionsFailuresAndReloads(t *testing.T) {
	d, stopD := closableEcho(t)
	e, stopE := closableEcho(t)
	g := startMetricsGateway(t, d, e)
	g.connectionIsCounted(t)
	appliedAt := g.reloadAddsE(t)
	stopD()
	g.failoverIsCounted(t)
	g.reloadRemovesD(t)
	stopE()
	g.noUpstreamIsCounted(t)
	g.rejectedReloadIsCounted(t, appliedAt)
}

// metricsGateway is a gateway with listener main at addr, in front of
// echo servers d (at first) and e (added by a reload), whose metrics the
// test follows through connections, failures and reloads.
type metricsGateway struct {
	h               *harness
	addr, adminAddr string
	d, e            string
}

// The labels of the series TestMetricsFollowConnectionsFailuresAndReloads
// reads.
const listenerLabel, endpointLabel = "listener", "endpoint"

// startMetricsGateway starts a metricsGateway in front of d.
func startMetricsGateway(t *testing.T, d, e string) *metricsGateway {
	dir := t.TempDir()
	g := &metricsGateway{addr: testutil.ListenAddr(t), adminAddr: testutil.ListenAddr(t), d: d, e: e}
	g.h = startHarness(t, dir, filepath.Join(dir, "gw.yaml"), g.conf(d))
	return g
}

// conf is the configuration with main in front of eps.
func (g *metricsGateway) conf(eps ...string) string {
	return withAdmin(g.adminAddr, "", render(listenerSpec{name: "main", addr: g.addr, endpoints: eps}))
}

// connectionIsCounted opens a connection, then closes it: the bytes it
// carried are counted.
func (g *metricsGateway) connectionIsCounted(t *testing.T) {
	d := g.d
	// A connection opens.
	c1 := testutil.Dial(t, g.addr)
	if !testutil.Echoes(c1) {
		t.Fatal("no echo")
	}
	m := scrape(t, g.adminAddr)
	m.expect(t, 1, "etcd_gateway_listener_connections_open", listenerLabel, "main")
	m.expect(t, 1, "etcd_gateway_listener_connections_total", listenerLabel, "main")
	m.expect(t, 1, "etcd_gateway_endpoint_connections_open", listenerLabel, "main", endpointLabel, d)
	m.expect(t, 1, "etcd_gateway_endpoint_up", listenerLabel, "main", endpointLabel, d)
	m.expect(t, 1, "etcd_gateway_listener_info", listenerLabel, "main", "address", g.addr, "source", "static")
	m.expect(t, 0, "etcd_gateway_config_reloads_total", "result", "applied")
	m.expect(t, 1, "etcd_gateway_config_last_reload_successful")
	for name := range m {
		if !strings.HasPrefix(name, "etcd_gateway_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected metric family %s", name)
		}
	}

	// It closes: the bytes it carried are counted.
	c1.Close()
	m = waitMetric(t, g.adminAddr, 0, "etcd_gateway_listener_connections_open", listenerLabel, "main")
	m.expect(t, 4, "etcd_gateway_listener_bytes_total", listenerLabel, "main", "direction", "to_upstream")
	m.expect(t, 4, "etcd_gateway_listener_bytes_total", listenerLabel, "main", "direction", "to_client")
	m.expect(t, 4, "etcd_gateway_endpoint_bytes_total", listenerLabel, "main", endpointLabel, d, "direction", "to_upstream")
	m.expect(t, 4, "etcd_gateway_endpoint_bytes_total", listenerLabel, "main", endpointLabel, d, "direction", "to_client")
	m.expect(t, 0, "etcd_gateway_endpoint_connections_open", listenerLabel, "main", endpointLabel, d)
}

// reloadAddsE adds e: d keeps its counters, e starts at zero. It returns
// when that reload was applied, as its metric says.
func (g *metricsGateway) reloadAddsE(t *testing.T) (appliedAt float64) {
	d, e := g.d, g.e
	saveRenameOver(t, g.h.path, g.conf(d, e))
	g.h.waitApplied(1)
	m := scrape(t, g.adminAddr)
	m.expect(t, 1, "etcd_gateway_config_reloads_total", "result", "applied")
	m.expect(t, 1, "etcd_gateway_endpoint_connections_total", listenerLabel, "main", endpointLabel, d)
	m.expect(t, 0, "etcd_gateway_endpoint_connections_total", listenerLabel, "main", endpointLabel, e)
	appliedAt, _ = m.value("etcd_gateway_config_last_reload_success_timestamp_seconds")
	return appliedAt
}

// failoverIsCounted: with d stopped, the next client is failed over to e.
func (g *metricsGateway) failoverIsCounted(t *testing.T) {
	d, e := g.d, g.e
	c2 := testutil.Dial(t, g.addr)
	if !testutil.Echoes(c2) {
		t.Fatal("no echo after d stopped")
	}
	m := scrape(t, g.adminAddr)
	m.expect(t, 1, "etcd_gateway_listener_failovers_total", listenerLabel, "main")
	m.expect(t, 1, "etcd_gateway_endpoint_dial_errors_total", listenerLabel, "main", endpointLabel, d)
	m.expect(t, 0, "etcd_gateway_endpoint_up", listenerLabel, "main", endpointLabel, d)
	m.expect(t, 1, "etcd_gateway_endpoint_connections_total", listenerLabel, "main", endpointLabel, e)
	m.expect(t, 2, "etcd_gateway_listener_connections_total", listenerLabel, "main")
}

// reloadRemovesD removes d: its series go; e's go on.
func (g *metricsGateway) reloadRemovesD(t *testing.T) {
	d, e := g.d, g.e
	saveRenameOver(t, g.h.path, g.conf(e))
	g.h.waitApplied(2)
	m := scrape(t, g.adminAddr)
	for _, name := range []string{"etcd_gateway_endpoint_up", "etcd_gateway_endpoint_connections_total", "etcd_gateway_endpoint_bytes_total", "etcd_gateway_endpoint_dial_errors_total"} {
		if m.has(name, endpointLabel, d) {
			t.Errorf("%s still has the removed endpoint %s", name, d)
		}
	}
	m.expect(t, 1, "etcd_gateway_endpoint_connections_total", listenerLabel, "main", endpointLabel, e)
	m.expect(t, 1, "etcd_gateway_endpoint_connections_open", listenerLabel, "main", endpointLabel, e)
}

// noUpstreamIsCounted: with e stopped too, the next client finds no
// upstream.
func (g *metricsGateway) noUpstreamIsCounted(t *testing.T) {
	c3 := testutil.Dial(t, g.addr)
	_ = c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("a client with every endpoint down was served")
	}
	m := waitMetric(t, g.adminAddr, 1, "etcd_gateway_listener_no_upstream_total", listenerLabel, "main")
	m.expect(t, 1, "etcd_gateway_endpoint_dial_errors_total", listenerLabel, "main", endpointLabel, g.e)
}

// rejectedReloadIsCounted: a rejected reload is counted and changes
// nothing else; the last success stays the reload applied at appliedAt.
func (g *metricsGateway) rejectedReloadIsCounted(t *testing.T, appliedAt float64) {
	saveRenameOver(t, g.h.path, strings.Replace(g.conf(g.e), "endpoints:", "endpoint:", 1))
	g.h.waitRejected(1)
	m := scrape(t, g.adminAddr)
	m.expect(t, 1, "etcd_gateway_config_reloads_total", "result", "rejected")
	m.expect(t, 2, "etcd_gateway_config_reloads_total", "result", "applied")
	m.expect(t, 0, "etcd_gateway_config_last_reload_successful")
	if at, _ := m.value("etcd_gateway_config_last_reload_success_timestamp_seconds"); at <= appliedAt {
		t.Fatalf("last successful reload at %v, want after %v (the second applied reload)", at, appliedAt)
	}
	if at := g.h.gw.Stats().LastApplied; float64(at.UnixNano())/1e9 != mustValue(t, m, "etcd_gateway_config_last_reload_success_timestamp_seconds") {
		t.Fatal("the rejected reload moved the last success timestamp")
	}
}

func mustValue(t *testing.T, m metrics, name string, labels ...string) float64 {
	t.Helper()
	v, ok := m.value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

// status fetches and decodes /status.
func status(t *testing.T, adminAddr string) Status {
	t.Helper()
	code, body := testutil.Get(t, adminAddr, "/status")
	if code != http.StatusOK {
		t.Fatalf("/status: %d %s", code, body)
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	return st
}

func TestStatusAndHealthzFollowReloads(t *testing.T) {
	a, b := testutil.Echo(t).Addr, testutil.Echo(t).Addr
	dir := t.TempDir()
	addr, adminAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	good := withAdmin(adminAddr, "", render(listenerSpec{name: "main", addr: addr, endpoints: []string{a}}))
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), good)
	statusAtStart(t, h, adminAddr, addr, a)

	// A connection shows in the status.
	c := testutil.Dial(t, addr)
	if !testutil.Echoes(c) {
		t.Fatal("no echo")
	}
	ls := status(t, adminAddr).Listeners[0]
	if ls.OpenConnections != 1 || ls.Endpoints[0].OpenConnections != 1 || ls.Endpoints[0].Health != "reachable" {
		t.Fatalf("status with one connection: %+v", ls)
	}

	bindFailureIsRejected(t, h, adminAddr, addr, a)

	// Reverting the file: it matches the running config again.
	saveRenameOver(t, h.path, good)
	testutil.WaitFor(t, "the reverted file to be read", 5*time.Second, func() bool { return h.gw.Stats().Unchanged == 1 })
	if code, body := testutil.Get(t, adminAddr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz after the revert: %d %q", code, body)
	}
	if st := status(t, adminAddr); !st.Healthy || st.Reload.LastResult != "unchanged" {
		t.Fatalf("status after the revert: %+v", st.Reload)
	}

	// An applied reload shows the new endpoints.
	saveRenameOver(t, h.path, withAdmin(adminAddr, "", render(listenerSpec{name: "main", addr: addr, endpoints: []string{b}})))
	h.waitApplied(1)
	st := status(t, adminAddr)
	if st.Reload.LastResult != "applied" || st.Reload.Applied != 1 || st.Reload.LastError != "" ||
		len(st.Listeners[0].Endpoints) != 1 || st.Listeners[0].Endpoints[0].Address != b {
		t.Fatalf("status after the reload: %+v %+v", st.Reload, st.Listeners[0])
	}
	if !st.Reload.LastAppliedAt.After(st.StartedAt) {
		t.Fatalf("last applied %v, not after the start %v", st.Reload.LastAppliedAt, st.StartedAt)
	}
}

// statusAtStart checks /status and /healthz of a gateway just started
// with listener main at addr in front of a.
func statusAtStart(t *testing.T, h *harness, adminAddr, addr, a string) {
	t.Helper()
	st := status(t, adminAddr)
	if st.ConfigFile != h.path || !st.Healthy || st.Reload.LastResult != "none" || len(st.Listeners) != 1 {
		t.Fatalf("status at start: %+v", st)
	}
	ls := st.Listeners[0]
	if ls.Name != "main" || ls.Address != addr || ls.Source.Type != "static" || len(ls.Endpoints) != 1 ||
		ls.Endpoints[0].Address != a || ls.Endpoints[0].State != "active" || ls.Endpoints[0].Health != "unknown" {
		t.Fatalf("listener status at start: %+v", ls)
	}
	if code, body := testutil.Get(t, adminAddr, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz at start: %d %q", code, body)
	}
}

// bindFailureIsRejected adds a listener that can't be bound beside main:
// the reload is rejected and /healthz says so.
func bindFailureIsRejected(t *testing.T, h *harness, adminAddr, addr, a string) {
	t.Helper()
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { occupied.Close() }) // held to the test's end, as the file names it until reverted
	saveRenameOver(t, h.path, withAdmin(adminAddr, "", render(
		listenerSpec{name: "main", addr: addr, endpoints: []string{a}},
		listenerSpec{name: "extra", addr: occupied.Addr().String(), endpoints: []string{a}})))
	h.waitRejected(1)
	code, body := testutil.Get(t, adminAddr, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `listener "extra"`) || !strings.Contains(body, "listen-addr") {
		t.Fatalf("/healthz after a bind failure: %d %q, want 503 naming the listener and key", code, body)
	}
	st := status(t, adminAddr)
	if st.Healthy || st.Reload.LastResult != "rejected" || !strings.Contains(st.Reload.LastError, `listener "extra"`) || st.Reload.LastAt == nil {
		t.Fatalf("status after a bind failure: healthy=%v reload=%+v", st.Healthy, st.Reload)
	}
}

func TestAdminServerFollowsReloads(t *testing.T) {
	backend := testutil.Echo(t).Addr
	dir := t.TempDir()
	addr, adminAddr, newAdminAddr := testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	listeners := render(listenerSpec{name: "main", addr: addr, endpoints: []string{backend}})
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), withAdmin(adminAddr, "", listeners))

	if code, _ := testutil.Get(t, adminAddr, "/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without admin-pprof: %d, want 404", code)
	}
	saveRenameOver(t, h.path, withAdmin(adminAddr, "admin-pprof: true\n", listeners))
	h.waitApplied(1)
	if code, body := testutil.Get(t, adminAddr, "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ with admin-pprof: %d", code)
	}

	// An admin address that can't be bound rejects the reload.
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()
	saveRenameOver(t, h.path, withAdmin(occupied.Addr().String(), "", listeners))
	if st := h.waitRejected(1); !strings.Contains(st.LastError, `key "admin-addr"`) {
		t.Fatalf("rejection %q does not name admin-addr", st.LastError)
	}
	if code, _ := testutil.Get(t, adminAddr, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz after a rejected reload: %d", code)
	}

	// The admin server moves.
	saveRenameOver(t, h.path, withAdmin(newAdminAddr, "", listeners))
	h.waitApplied(2)
	if code, _ := testutil.Get(t, newAdminAddr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz on the new admin address: %d", code)
	}
	if c, err := net.Dial("tcp", adminAddr); err == nil {
		c.Close()
		t.Fatal("the old admin address still accepts")
	}

	// Without admin-addr there is no admin server.
	saveRenameOver(t, h.path, listeners)
	h.waitApplied(3)
	if h.gw.AdminAddr() != nil {
		t.Fatal("the admin server still runs")
	}
	if c, err := net.Dial("tcp", newAdminAddr); err == nil {
		c.Close()
		t.Fatal("the admin address still accepts")
	}
}

func TestMetricsCountMaxConnectionsRejections(t *testing.T) {
	addr, adminAddr := startMainWithAdmin(t, "max-connections: 1\n", testutil.Echo(t).Addr)
	if c := testutil.Dial(t, addr); !testutil.Echoes(c) {
		t.Fatal("no echo under the limit")
	}
	over := testutil.Dial(t, addr)
	if testutil.Echoes(over) {
		t.Fatal("the connection past max-connections was served")
	}
	m := waitMetric(t, adminAddr, 1, "etcd_gateway_listener_connections_rejected_total", "listener", "main")
	m.expect(t, 1, "etcd_gateway_listener_max_connections", "listener", "main")
	m.expect(t, 1, "etcd_gateway_listener_connections_open", "listener", "main")
	m.expect(t, 1, "etcd_gateway_listener_connections_total", "listener", "main")
}

// TestStatusShowsHealthChecks runs etcd health checks against a real
// member and an echo server that is no etcd: /status and endpoint_up show
// the member healthy and the impostor unhealthy, with the check's reason.
func TestStatusShowsHealthChecks(t *testing.T) {
	c := testutil.Cluster(t, 1)
	impostor := testutil.Echo(t).Addr
	dir := t.TempDir()
	addr, adminAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	extra := "    health-check: {type: etcd, interval: 100ms, timeout: 100ms, fall: 1, rise: 1}\n"
	startHarness(t, dir, filepath.Join(dir, "gw.yaml"),
		withAdmin(adminAddr, "", render(listenerSpec{name: "main", addr: addr, endpoints: []string{c.ClientAddrs()[0], impostor}, extra: extra})))

	var ls ListenerStatus
	testutil.WaitFor(t, "a verdict on both endpoints", 10*time.Second, func() bool {
		ls = status(t, adminAddr).Listeners[0]
		healthy, unhealthy := 0, 0
		for _, ep := range ls.Endpoints {
			switch ep.Health {
			case "healthy":
				healthy++
			case "unhealthy":
				unhealthy++
			}
		}
		return healthy == 1 && unhealthy == 1
	})
	for _, ep := range ls.Endpoints {
		switch ep.Address {
		case c.ClientAddrs()[0]:
			if ep.State != "active" || ep.CheckError != "" {
				t.Fatalf("the etcd member: %+v", ep)
			}
		case impostor:
			if ep.State != "inactive" || ep.CheckError == "" {
				t.Fatalf("the impostor: %+v, want inactive with the check's reason", ep)
			}
		}
	}
	code, body := testutil.Get(t, adminAddr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		fmt.Sprintf(`etcd_gateway_endpoint_up{endpoint=%q,listener="main"} 1`, c.ClientAddrs()[0]),
		fmt.Sprintf(`etcd_gateway_endpoint_up{endpoint=%q,listener="main"} 0`, impostor),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
