package gateway

import "github.com/prometheus/client_golang/prometheus"

// peerCollector exports the connections each listener's allow-list
// (allowed-uids, allowed-gids) turned away, so that an alert can fire on
// a client that keeps knocking with the wrong identity.
type peerCollector struct {
	g      *Gateway
	denied *prometheus.Desc
}

func newPeerCollector(g *Gateway) *peerCollector {
	return &peerCollector{g: g, denied: prometheus.NewDesc("etcd_gateway_listener_connections_denied_total",
		"Client connections closed at once because the connecting process's user and group are not in the listener's allowed-uids or allowed-gids.",
		[]string{"listener"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.denied }

// Collect implements prometheus.Collector.
func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ls := range c.g.group.Status() {
		ch <- prometheus.MustNewConstMetric(c.denied, prometheus.CounterValue, float64(ls.Counters.Denied), ls.Config.Name)
	}
}
