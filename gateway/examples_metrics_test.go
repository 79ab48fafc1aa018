package gateway

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

// metricNamePattern matches the names of the series a PromQL expression
// may use from a gateway: its own, and the Go and process metrics that come
// along. examples/prometheus's test holds every selector of the dashboard
// and the rules to this pattern, with Prometheus's parser, so that none is
// missed.
const metricNamePattern = `\b(?:etcd_gateway|process|go)_[a-z0-9_]+\b`

// exampleExpressions returns the PromQL of the Grafana dashboard (panel
// targets and variable queries) and of the alerting rules, by file.
func exampleExpressions(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	raw, err := os.ReadFile("../examples/grafana/etcd-gateway.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out["dashboard"] = append(out["dashboard"], tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			out["dashboard"] = append(out["dashboard"], v.Definition)
		}
	}
	raw, err = os.ReadFile("../examples/prometheus/etcd-gateway-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("the rules: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["rules"] = append(out["rules"], r.Expr)
		}
	}
	return out
}

// exported reports whether the scrape has the series name: a family, or
// the _bucket, _sum or _count series of a histogram family.
func exported(m metrics, name string) bool {
	if _, ok := m[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := m[base]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
	}
	return false
}

// TestExampleDashboardAndRulesUseExportedMetrics scrapes a running gateway
// that has every kind of series (static and SRV listeners, a host name,
// health checks) and checks that each metric the Grafana dashboard and the
// Prometheus rules name is in the scrape: a renamed metric breaks this
// test, not an operator's dashboard.
func TestExampleDashboardAndRulesUseExportedMetrics(t *testing.T) {
	exprs := exampleExpressions(t)
	if len(exprs["dashboard"]) < 20 || len(exprs["rules"]) < 8 {
		t.Fatalf("found %d dashboard and %d rule expressions: the files were not read as expected", len(exprs["dashboard"]), len(exprs["rules"]))
	}
	metricName := regexp.MustCompile(metricNamePattern)
	used := map[string][]string{} // metric -> files
	for file, list := range exprs {
		for _, e := range list {
			for _, name := range metricName.FindAllString(e, -1) {
				if !slices.Contains(used[name], file) {
					used[name] = append(used[name], file)
				}
			}
		}
	}
	for _, must := range []string{
		"etcd_gateway_dns_answer_age_seconds", "etcd_gateway_accept_paused_total", "etcd_gateway_endpoint_up",
		"etcd_gateway_config_last_reload_successful", "etcd_gateway_endpoint_dial_duration_seconds_bucket", "process_open_fds",
	} {
		if used[must] == nil {
			t.Errorf("the examples don't use %s", must)
		}
	}

	f := startDNSFixture(t, testutil.Cluster(t, 1))
	// DNS series come with the first answers: wait for them, then say
	// what is missing.
	var missing []string
	deadline := time.Now().Add(8 * time.Second)
	testutil.WaitFor(t, "a scrape", 10*time.Second, func() bool {
		m := scrape(t, f.admin)
		missing = missing[:0]
		for name, files := range used {
			if !exported(m, name) {
				missing = append(missing, name+" (used by the "+strings.Join(files, " and ")+")")
			}
		}
		return len(missing) == 0 || time.Now().After(deadline)
	})
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("not exported by a running gateway: %s", m)
	}
	t.Logf("%d metrics used by the examples, all exported", len(used))
}
