package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// dnsCollector exports what DNS said of each listener's names, so that an
// alert can fire on stale answers before they matter.
type dnsCollector struct {
	g                             *Gateway
	lookups, age, failing, usable *prometheus.Desc
}

func newDNSCollector(g *Gateway) *dnsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("etcd_gateway_dns_"+name, help, labels, nil)
	}
	return &dnsCollector{
		g:       g,
		lookups: d("name_lookups_total", "DNS lookups of the host names of a listener's endpoints (A and AAAA together), by result (success or failure).", "listener", "name", "result"),
		age:     d("answer_age_seconds", "Age of the DNS answer in use, per listener and name (kind is host, or srv for the SRV discovery, whose name is the domain); it grows while lookups fail.", "listener", "kind", "name"),
		failing: d("failing", "1 while the lookups of the name fail (the last good answer stays in use).", "listener", "kind", "name"),
		usable:  d("name_addresses", "Addresses in use for the host name; 0 when it has none (never resolved, gone, or expired by dns-stale-max).", "listener", "name"),
	}
}

// Describe implements prometheus.Collector.
func (c *dnsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lookups, c.age, c.failing, c.usable} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *dnsCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	for _, ls := range c.g.group.Status() {
		name := ls.Config.Name
		if srv := ls.SRV; srv != nil {
			if !srv.ResolvedAt.IsZero() {
				metric(c.age, prometheus.GaugeValue, now.Sub(srv.ResolvedAt).Seconds(), name, "srv", ls.Config.DiscoverySRV)
			}
			metric(c.failing, prometheus.GaugeValue, boolValue(srv.Failing), name, "srv", ls.Config.DiscoverySRV)
		}
		for _, st := range ls.Names {
			metric(c.lookups, prometheus.CounterValue, float64(st.Lookups-st.Failures), name, st.Name, "success")
			metric(c.lookups, prometheus.CounterValue, float64(st.Failures), name, st.Name, "failure")
			if !st.ResolvedAt.IsZero() {
				metric(c.age, prometheus.GaugeValue, now.Sub(st.ResolvedAt).Seconds(), name, "host", st.Name)
			}
			metric(c.failing, prometheus.GaugeValue, boolValue(st.Failing), name, "host", st.Name)
			metric(c.usable, prometheus.GaugeValue, float64(len(st.Addrs)), name, st.Name)
		}
	}
}
