package gateway

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// page fetches the status page at adminAddr+path and parses it.
func page(t *testing.T, adminAddr, path string) *html.Node {
	t.Helper()
	code, body := testutil.Get(t, adminAddr, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if out := os.Getenv("ETCD_GATEWAY_PAGE_OUT"); out != "" {
		// For docs/img: the screenshot is made from the page this test checks.
		if err := os.WriteFile(out, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the page is not HTML: %v", err)
	}
	return doc
}

// find returns the elements under n for which match is true, in document
// order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// text is the text content of n, with runs of white space collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// one returns the only element under n that match accepts, or fails.
func one(t *testing.T, n *html.Node, what string, match func(*html.Node) bool) *html.Node {
	t.Helper()
	got := find(n, match)
	if len(got) != 1 {
		t.Fatalf("%s: found %d elements, want 1", what, len(got))
	}
	return got[0]
}

// cell returns the td of row with class class.
func cell(t *testing.T, row *html.Node, class string) *html.Node {
	t.Helper()
	return one(t, row, "td."+class, func(n *html.Node) bool { return n.Data == "td" && hasClass(n, class) })
}

// endpointRow returns the status page's row of an endpoint.
func endpointRow(t *testing.T, doc *html.Node, listener, endpoint string) *html.Node {
	t.Helper()
	return one(t, doc, "row of "+listener+"/"+endpoint, func(n *html.Node) bool {
		return n.Data == "tr" && hasClass(n, "endpoint") && attr(n, "data-listener") == listener && attr(n, "data-endpoint") == endpoint
	})
}

// TestStatusPageShowsWhatIsWrong runs a gateway with an endpoint whose
// dial fails, an etcd member beside an impostor that fails etcd's health
// check, and a rejected reload, and reads the status page as a person
// would: each problem is there, in red, with its reason, and what is well
// is not red.
func TestStatusPageShowsWhatIsWrong(t *testing.T) {
	g := startWrongGateway(t)
	doc := page(t, g.adminAddr, "/")
	st := status(t, g.adminAddr)
	pageShowsTheProblems(t, doc, st)
	pageShowsTheEndpoints(t, g, doc)
	pageShowsTheListeners(t, doc, st)
	pageIsSelfContained(t, g.adminAddr, doc)
	metricsForADashboard(t, g, st)
}

// wrongGateway is a gateway with problems: listener events's endpoint
// dead refuses dials, listener main has an etcd member and an impostor
// that fails etcd's health check, and its last reload was rejected.
type wrongGateway struct {
	adminAddr, dead, member, impostor string
}

// startWrongGateway starts a wrongGateway whose problems show in /status,
// with a client served by the member.
func startWrongGateway(t *testing.T) wrongGateway {
	c := testutil.Cluster(t, 1)
	g := wrongGateway{member: c.ClientAddrs()[0], impostor: testutil.Echo(t).Addr, dead: testutil.RefusingAddr(t)}
	dir := t.TempDir()
	mainAddr, eventsAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	g.adminAddr = testutil.ListenAddr(t)
	checks := "    health-check: {type: etcd, interval: 200ms, timeout: 200ms, fall: 1, rise: 1}\n"
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), withAdmin(g.adminAddr, "", render(
		listenerSpec{name: "events", addr: eventsAddr, endpoints: []string{g.dead}},
		listenerSpec{name: "main", addr: mainAddr, endpoints: []string{g.member, g.impostor}, extra: checks})))

	// A client of events: the gateway's dial to the dead endpoint fails.
	conn, err := net.Dial("tcp", eventsAddr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = conn.Read(make([]byte, 1)) // the gateway closes it: no upstream
	conn.Close()
	testutil.WaitFor(t, "the dead endpoint down and the impostor unhealthy", 10*time.Second, func() bool {
		st := status(t, g.adminAddr)
		return endpointHealth(st, "events", g.dead) == healthUnreachable &&
			endpointHealth(st, "main", g.impostor) == healthUnhealthy && endpointHealth(st, "main", g.member) == healthHealthy
	})

	// A client of main, served by the member: its connection and bytes show.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := testutil.Client(t, mainAddr).Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put through the gateway: %v", err)
	}

	saveRenameOver(t, h.path, "listeners: [oops\n")
	h.waitRejected(1)
	return g
}

// pageShowsTheProblems checks the page's title, health banner and reload
// box.
func pageShowsTheProblems(t *testing.T, doc *html.Node, st Status) {
	if title := text(one(t, doc, "title", func(n *html.Node) bool { return n.Data == "title" })); !strings.HasPrefix(title, "[!] ") {
		t.Errorf("title %q: an unhealthy gateway's tab should say so", title)
	}
	health := one(t, doc, "#health", func(n *html.Node) bool { return attr(n, "id") == "health" })
	if !hasClass(health, "bad") || !strings.Contains(text(health), "last config reload was rejected") {
		t.Errorf("health banner: class %q, text %q", attr(health, "class"), text(health))
	}

	reload := one(t, doc, "#reload", func(n *html.Node) bool { return attr(n, "id") == "reload" })
	reloadErr := one(t, reload, "the reload error", func(n *html.Node) bool { return hasClass(n, "reload-error") })
	if !hasClass(reload, "bad") || !strings.Contains(text(reload), "rejected") || text(reloadErr) != strings.Join(strings.Fields(st.Reload.LastError), " ") || st.Reload.LastError == "" {
		t.Errorf("reload: class %q, text %q; want red, rejected, with the error %q", attr(reload, "class"), text(reload), st.Reload.LastError)
	}
}

// pageShowsTheEndpoints checks the rows of the dead endpoint, the
// impostor and the member.
func pageShowsTheEndpoints(t *testing.T, g wrongGateway, doc *html.Node) {
	row := endpointRow(t, doc, "events", g.dead)
	if state, reason := text(cell(t, row, "state")), text(cell(t, row, "reason")); !hasClass(row, "bad") || !strings.HasPrefix(state, "down") || !strings.HasPrefix(reason, "dial failed") {
		t.Errorf("the dead endpoint: class %q, state %q, reason %q; want red, down, dial failed", attr(row, "class"), state, reason)
	}
	row = endpointRow(t, doc, "main", g.impostor)
	if state, reason := text(cell(t, row, "state")), text(cell(t, row, "reason")); !hasClass(row, "bad") || !strings.HasPrefix(state, "down") ||
		!strings.HasPrefix(reason, "health check failed: etcd check") {
		t.Errorf("the impostor: class %q, state %q, reason %q; want red, down, the etcd check's error", attr(row, "class"), state, reason)
	}
	row = endpointRow(t, doc, "main", g.member)
	if state, reason := text(cell(t, row, "state")), text(cell(t, row, "reason")); !hasClass(row, "ok") || !strings.HasPrefix(state, "up") || reason != "" {
		t.Errorf("the member: class %q, state %q, reason %q; want up, no reason", attr(row, "class"), state, reason)
	}
	if open := text(cell(t, row, "open")); open != "1" {
		t.Errorf("the member's open connections: %q, want the client's 1", open)
	}
}

// pageShowsTheListeners checks the listeners' rows and the build line.
func pageShowsTheListeners(t *testing.T, doc *html.Node, st Status) {
	listeners := find(doc, func(n *html.Node) bool { return n.Data == "tr" && hasClass(n, "listener") })
	classes := map[string]string{}
	for _, l := range listeners {
		for _, c := range []string{"ok", "warn", "bad"} {
			if hasClass(l, c) {
				classes[attr(l, "data-listener")] = c
			}
		}
	}
	if classes["events"] != "bad" || classes["main"] != "warn" {
		t.Errorf("listener rows %v: want events bad (no endpoint up), main warn (one of two down)", classes)
	}
	if build := text(one(t, doc, "#build", func(n *html.Node) bool { return attr(n, "id") == "build" })); !strings.Contains(build, st.Version) {
		t.Errorf("build %q lacks the version %q", build, st.Version)
	}
}

// pageIsSelfContained checks that the page loads nothing and refreshes
// only when asked to.
func pageIsSelfContained(t *testing.T, adminAddr string, doc *html.Node) {
	for _, n := range find(doc, func(n *html.Node) bool {
		return n.Data == "script" || attr(n, "src") != "" || (n.Data == "link" && attr(n, "rel") == "stylesheet")
	}) {
		t.Errorf("the page loads something: <%s %v>", n.Data, n.Attr)
	}
	if refresh := find(doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "http-equiv") == "refresh" }); len(refresh) != 0 {
		t.Error("auto-refresh is on without ?refresh")
	}
	doc = page(t, adminAddr, "/?refresh=5")
	refresh := find(doc, func(n *html.Node) bool { return n.Data == "meta" && attr(n, "http-equiv") == "refresh" })
	if len(refresh) != 1 || attr(refresh[0], "content") != "5" {
		t.Errorf("?refresh=5: meta refresh %v", refresh)
	}
}

// metricsForADashboard checks the metrics a dashboard needs, from the same
// gateway: the dial and health-check durations and results, the reload's
// duration.
func metricsForADashboard(t *testing.T, g wrongGateway, st Status) {
	m := scrape(t, g.adminAddr)
	for _, c := range []struct {
		name, endpoint string
		min            uint64
	}{
		{"etcd_gateway_endpoint_dial_duration_seconds", g.member, 1},
		{"etcd_gateway_endpoint_dial_duration_seconds", g.dead, 1},
		{"etcd_gateway_endpoint_health_check_duration_seconds", g.impostor, 1},
		{"etcd_gateway_config_reload_duration_seconds", "", 1},
	} {
		if n := histogramCount(m, c.name, c.endpoint); n < c.min {
			t.Errorf("%s{endpoint=%q}: %d observations, want at least %d", c.name, c.endpoint, n, c.min)
		}
	}
	if v, _ := m.value("etcd_gateway_endpoint_health_checks_total", "endpoint", g.impostor, "result", "failure"); v < 1 {
		t.Errorf("the impostor's failed health checks: %v", v)
	}
	if v, _ := m.value("etcd_gateway_endpoint_health_checks_total", "endpoint", g.member, "result", "success"); v < 1 {
		t.Errorf("the member's passed health checks: %v", v)
	}
	m.expect(t, 0, "etcd_gateway_endpoint_healthy", "endpoint", g.impostor)
	m.expect(t, 1, "etcd_gateway_endpoint_healthy", "endpoint", g.member)
	if v, _ := m.value("etcd_gateway_start_time_seconds"); v != float64(st.StartedAt.UnixNano())/1e9 {
		t.Errorf("etcd_gateway_start_time_seconds %v, /status started_at %v", v, st.StartedAt)
	}
}

// histogramCount is the sample count of the histogram series of name
// whose endpoint label is endpoint ("" for a series without one).
func histogramCount(m metrics, name, endpoint string) uint64 {
	fam, ok := m[name]
	if !ok {
		return 0
	}
	for _, s := range fam.GetMetric() {
		ep := ""
		for _, lp := range s.GetLabel() {
			if lp.GetName() == "endpoint" {
				ep = lp.GetValue()
			}
		}
		if ep == endpoint && s.GetHistogram() != nil {
			return s.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// endpointHealth is the health /status gives the endpoint, or "".
func endpointHealth(st Status, listener, endpoint string) string {
	for _, ls := range st.Listeners {
		for _, ep := range ls.Endpoints {
			if ls.Name == listener && ep.Address == endpoint {
				return ep.Health
			}
		}
	}
	return ""
}
