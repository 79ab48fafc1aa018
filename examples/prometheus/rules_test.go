// Package prometheus checks the Prometheus and Grafana examples with
// Prometheus's own code: the alerting rules as Prometheus loads them, and
// every PromQL expression of the Grafana dashboard. It is a module of its
// own so that the gateway's module doesn't carry Prometheus's.
package prometheus

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// gatewayMetric is the pattern the gateway module's test uses to find the
// metric names in these files (gateway/examples_metrics_test.go): every
// selector must match it, or that test would not check the name against a
// real scrape.
const gatewayMetric = `^(?:etcd_gateway|process|go)_[a-z0-9_]+$`

// checkSelectors fails t for each selector of expr whose metric name the
// gateway module's test would not see, and returns how many it found.
func checkSelectors(t *testing.T, where string, expr parser.Expr) int {
	t.Helper()
	re := regexp.MustCompile(gatewayMetric)
	n := 0
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			n++
			if !re.MatchString(vs.Name) {
				t.Errorf("%s: selector %s has no metric name the gateway's test checks", where, vs)
			}
		}
		return nil
	})
	return n
}

// TestRules loads the alerting rules as Prometheus does (promtool check
// rules runs the same code): strict YAML, valid PromQL, valid label names
// and templates.
func TestRules(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile("etcd-gateway-rules.yaml", false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		return
	}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
				continue
			}
			if checkSelectors(t, r.Alert, expr) == 0 {
				t.Errorf("%s: no selector", r.Alert)
			}
			if r.Alert != "" {
				alerts++
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: wants a severity label and a summary", r.Alert)
			}
		}
	}
	if alerts < 8 {
		t.Fatalf("%d alerts, want the 8 or more of docs/operations.md", alerts)
	}
}

// TestDashboard parses every PromQL expression of the Grafana dashboard.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("../grafana/etcd-gateway.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	// The dashboard's variables, replaced by values of their kind, so that
	// each expression parses as Prometheus would receive it.
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$listener", ".*")
	p := parser.NewParser(parser.Options{})
	exprs := 0
	for _, panel := range dash.Panels {
		for _, tg := range panel.Targets {
			exprs++
			expr, err := p.ParseExpr(grafanaVars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: %s: %v", panel.Title, tg.Expr, err)
				continue
			}
			checkSelectors(t, "panel "+panel.Title, expr)
		}
	}
	if dash.UID == "" || exprs < 20 {
		t.Fatalf("uid %q, %d expressions: not the dashboard expected", dash.UID, exprs)
	}
}
