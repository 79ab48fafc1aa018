package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcd-gateway/etcd-gateway/gateway/reconcile"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// moveCollector exports the operator's drained marks and the connections
// the gateway moved to other members, by reason, so that a rolling
// upgrade's progress and a rebalance's churn show on a dashboard.
type moveCollector struct {
	g              *Gateway
	drained, moved *prometheus.Desc
}

func newMoveCollector(g *Gateway) *moveCollector {
	return &moveCollector{
		g:       g,
		drained: prometheus.NewDesc("etcd_gateway_endpoint_drained", "1 while an operator's drain keeps the endpoint out of rotation (etcd-gateway drain), until undrain or until its address leaves the file.", []string{"listener", "endpoint"}, nil),
		moved:   prometheus.NewDesc("etcd_gateway_connections_moved_total", "Connections closed while quiet (nothing in flight) so that their clients reconnect to another member; reason is drain, rebalance or max-age.", []string{"listener", "endpoint", "reason"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *moveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.drained
	ch <- c.moved
}

// Collect implements prometheus.Collector.
func (c *moveCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ls := range c.g.group.Status() {
		c.collectListener(ch, ls)
	}
}

func (c *moveCollector) collectListener(ch chan<- prometheus.Metric, ls reconcile.Status) {
	name := ls.Config.Name
	for _, ep := range ls.Endpoints {
		ch <- prometheus.MustNewConstMetric(c.drained, prometheus.GaugeValue, boolValue(ep.Drained), name, ep.Addr)
		for reason, n := range map[upstream.MoveReason]uint64{
			upstream.MoveDrain: ep.Moves.Drain, upstream.MoveRebalance: ep.Moves.Rebalance, upstream.MoveMaxAge: ep.Moves.MaxAge,
		} {
			ch <- prometheus.MustNewConstMetric(c.moved, prometheus.CounterValue, float64(n), name, ep.Addr, string(reason))
		}
	}
}
