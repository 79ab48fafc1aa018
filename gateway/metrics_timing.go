package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// timingCollector exports what a dashboard needs beside the counters: how
// long dials and health checks to each endpoint take, how the checks go,
// and when the gateway started. Its labels are the listener and the
// endpoint, as the other endpoint series: bounded by the configuration,
// never per client.
type timingCollector struct {
	g                                   *Gateway
	dial, check, checks, healthy, start *prometheus.Desc
}

func newTimingCollector(g *Gateway) *timingCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("etcd_gateway_"+name, help, labels, nil)
	}
	le := []string{"listener", "endpoint"}
	return &timingCollector{
		g:       g,
		dial:    d("endpoint_dial_duration_seconds", "How long dials to the endpoint took (TCP connect, plus the TLS handshake when the gateway originates TLS), failed dials included.", le...),
		check:   d("endpoint_health_check_duration_seconds", "How long the endpoint's health checks took, failed ones included.", le...),
		checks:  d("endpoint_health_checks_total", "Health checks of the endpoint by result (success or failure).", "listener", "endpoint", "result"),
		healthy: d("endpoint_healthy", "The health checks' verdict: 1 healthy (or no checks), 0 when fall failures in a row took the endpoint out.", le...),
		start:   d("start_time_seconds", "When the gateway started, in Unix seconds (time() minus it is the uptime)."),
	}
}

// Describe implements prometheus.Collector.
func (c *timingCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.dial, c.check, c.checks, c.healthy, c.start} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *timingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, float64(c.g.started.UnixNano())/1e9)
	hist := func(d *prometheus.Desc, s upstream.HistogramSnapshot, labels ...string) {
		ch <- prometheus.MustNewConstHistogram(d, s.Count, s.Sum, s.Buckets, labels...)
	}
	for name, l := range c.g.group.Listeners() {
		for _, ep := range l.Pool().Endpoints() {
			tm := ep.Timings()
			hist(c.dial, tm.Dial(), name, ep.Addr())
			hist(c.check, tm.Check(), name, ep.Addr())
			ok, failed := tm.CheckResults()
			ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(ok), name, ep.Addr(), "success")
			ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(failed), name, ep.Addr(), "failure")
			ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, boolValue(ep.Healthy()), name, ep.Addr())
		}
	}
}

// newReloadDuration is the histogram of how long applying a changed
// configuration took (binding, DNS of new names, the diff), applied or
// rejected: a reload that grows slow shows before it times out.
func newReloadDuration() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "etcd_gateway_config_reload_duration_seconds",
		Help:    "How long applying a changed config file took, applied or rejected (an unchanged read is not counted).",
		Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30},
	})
}
