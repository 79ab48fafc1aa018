package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsPath is where every etcd version serves its Prometheus metrics
// on the client port, beside /health.
const metricsPath = "/metrics"

// maxMetricsBody bounds what the checks read of a member's /metrics: far
// more than etcd writes, far less than would hurt.
const maxMetricsBody = 8 << 20

// The gRPC counters etcd keeps per method (go-grpc-prometheus, and its
// successor in go-grpc-middleware since 3.6, under the same names).
const (
	grpcStarted = "grpc_server_started_total"
	grpcHandled = "grpc_server_handled_total"
)

// errNoMetrics is the error of a member whose /metrics can't be read for
// its gRPC counters: the checks then do without.
var errNoMetrics = errors.New("the member serves no gRPC metrics")

// clientRPCs is what a member's own counters say of the work its clients
// give it, when they were read: the streams open (watches, lease
// keep-alives) and the unary calls started since it started. No member
// counts its client connections, but a client that holds a member does
// so with a stream or with calls. The Maintenance service (the Status
// that gateways ask, an operator's defragment) and gRPC's health service
// are no client's work, and are left out.
type clientRPCs struct {
	streams int64
	unary   uint64
	at      time.Time
}

// workSince is the clients' work on the member between prev and r: the
// streams open at r and the unary calls started in between. A member that
// restarted in between counts all of r's.
func (r clientRPCs) workSince(prev clientRPCs) int64 {
	calls := r.unary
	if calls >= prev.unary {
		calls -= prev.unary
	}
	return r.streams + int64(calls)
}

// askClientRPCs reads the member's client RPCs, the previous reading kept
// beside them; a member without gRPC metrics is asked no more on this
// connection.
func (r *etcdRound) askClientRPCs(ctx context.Context) {
	rpcs, err := r.getClientRPCs(ctx)
	switch {
	case errors.Is(err, errNoMetrics):
		r.f.metrics = absent
	case err == nil:
		r.f.metrics = present
		r.f.prevRPCs, r.f.rpcs = r.f.rpcs, rpcs
	}
}

// getClientRPCs reads the member's counters, dated when they were asked
// for: the reading shows at least all that came before.
func (r *etcdRound) getClientRPCs(ctx context.Context) (clientRPCs, error) {
	asked := time.Now()
	status, body, err := r.ask(ctx, http.MethodGet, metricsPath, "", maxMetricsBody)
	switch {
	case err != nil:
		return clientRPCs{}, err
	case status != http.StatusOK:
		return clientRPCs{}, fmt.Errorf("%w: GET %s: HTTP %d: %q", errNoMetrics, metricsPath, status, shorten(body))
	}
	return parseClientRPCs(body, asked)
}

// parseClientRPCs reads the gRPC counters of a /metrics answer. A member
// that served no call yet may have none: it has no client work.
func parseClientRPCs(body []byte, at time.Time) (clientRPCs, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(grpcLines(body)))
	if err != nil {
		return clientRPCs{}, fmt.Errorf("%w: GET %s: %v", errNoMetrics, metricsPath, err)
	}
	rpcs := clientRPCs{at: at}
	for _, m := range families[grpcStarted].GetMetric() {
		switch n := m.GetCounter().GetValue(); {
		case !clientCall(m):
		case label(m, "grpc_type") == "unary":
			rpcs.unary += uint64(n)
		default:
			rpcs.streams += int64(n)
		}
	}
	for _, m := range families[grpcHandled].GetMetric() {
		if clientCall(m) && label(m, "grpc_type") != "unary" {
			rpcs.streams -= int64(m.GetCounter().GetValue())
		}
	}
	rpcs.streams = max(rpcs.streams, 0)
	return rpcs, nil
}

// grpcLines returns the lines of body of the gRPC counters' families, so
// that the parser reads those and not the member's hundreds of others,
// without their samples of 0 (a counter per method and code, most never
// counted), which add nothing.
func grpcLines(body []byte) []byte {
	var out []byte
	for line := range bytes.Lines(body) {
		name := bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("# HELP ")), []byte("# TYPE "))
		grpc := bytes.HasPrefix(name, []byte(grpcStarted)) || bytes.HasPrefix(name, []byte(grpcHandled))
		if grpc && !bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte(" 0")) {
			out = append(out, line...)
		}
	}
	return out
}

// clientCall reports whether m counts calls of a service clients use for
// their work.
func clientCall(m *dto.Metric) bool {
	service := label(m, "grpc_service")
	return service != "etcdserverpb.Maintenance" && !strings.HasPrefix(service, "grpc.health.")
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
