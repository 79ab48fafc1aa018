package gateway

import (
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/etcd-gateway/etcd-gateway/gateway/reconcile"
	"github.com/etcd-gateway/etcd-gateway/internal/buildinfo"
)

// Label values of the direction label.
const (
	toUpstream = "to_upstream"
	toClient   = "to_client"
)

// newRegistry returns the registry /metrics serves: the gateway's own
// metrics, read from its live counters at each scrape, and Go's and the
// process's (file descriptors among them).
func newRegistry(g *Gateway) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	g.reloadDuration = newReloadDuration()
	reg.MustRegister(
		newCollector(g),
		newDNSCollector(g),
		newTimingCollector(g),
		g.reloadDuration,
		newPeerCollector(g),
		newReadinessCollector(g),
		newMoveCollector(g),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(g.up.stats.collectors()...)
	return reg
}

// collector turns the gateway's live state into metrics at scrape time: it
// walks the running listeners and their pools' endpoints and reads their
// atomic counters. Series of removed listeners and endpoints are gone from
// the next scrape; those that a reload keeps go on counting.
type collector struct {
	g *Gateway

	buildInfo *prometheus.Desc

	reloads, lastReloadSuccess, lastReloadSuccessful *prometheus.Desc
	acceptPausedTotal, acceptPaused                  *prometheus.Desc

	listenerInfo, listenerOpen, listenerTotal, listenerRejected *prometheus.Desc
	listenerIdleClosed, listenerNoUpstream, listenerBytes       *prometheus.Desc
	listenerTLSFailures                                         *prometheus.Desc
	listenerFailovers, listenerMaxConns, dnsLookups             *prometheus.Desc
	endpointUp, endpointOpen, endpointTotal, endpointDialErrors *prometheus.Desc
	endpointBytes                                               *prometheus.Desc
}

func newCollector(g *Gateway) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("etcd_gateway_"+name, help, labels, nil)
	}
	l, le := []string{"listener"}, []string{"listener", "endpoint"}
	return &collector{
		g:         g,
		buildInfo: d("build_info", "Always 1; the labels give the gateway's version and Go version.", "version", "goversion"),

		reloads:              d("config_reloads_total", "Config file reads by result: applied, rejected (the previous configuration stays), unchanged (matches the running configuration).", "result"),
		lastReloadSuccess:    d("config_last_reload_success_timestamp_seconds", "When the running configuration was applied (at start, or by the last applied reload), in Unix seconds."),
		lastReloadSuccessful: d("config_last_reload_successful", "1 when the last config file read was applied or matched the running configuration, 0 when it was rejected."),

		acceptPausedTotal: d("accept_paused_total", "Times a listener stopped accepting because few file descriptors were left: a reserve is kept for the admin server, the config watcher and health checks."),
		acceptPaused:      d("accept_paused", "Listeners not accepting now because few file descriptors are left."),

		listenerInfo:        d("listener_info", "Always 1; the labels give the listener's bound address and its source (static, or srv:DOMAIN).", "listener", "address", "source"),
		listenerOpen:        d("listener_connections_open", "Client connections open now.", l...),
		listenerTotal:       d("listener_connections_total", "Client connections accepted and forwarded (rejected ones are not counted here).", l...),
		listenerRejected:    d("listener_connections_rejected_total", "Client connections closed at once because the listener had max-connections open.", l...),
		listenerIdleClosed:  d("listener_idle_closed_total", "Client connections closed by idle-timeout.", l...),
		listenerNoUpstream:  d("listener_no_upstream_total", "Client connections closed because no endpoint could be dialled.", l...),
		listenerTLSFailures: d("listener_tls_handshake_failures_total", "Client connections closed because their TLS handshake failed (listeners with a tls block).", l...),
		listenerBytes:       d("listener_bytes_total", "Bytes forwarded, counted as they are forwarded, by open connections too; direction is to_upstream or to_client.", "listener", "direction"),
		listenerFailovers:   d("listener_failovers_total", "Client connections served by an endpoint after a dial to another endpoint failed for them.", l...),
		listenerMaxConns:    d("listener_max_connections", "The listener's max-connections; 0 means no limit.", l...),
		dnsLookups:          d("dns_lookups_total", "DNS SRV lookups of listeners with discovery-srv, by result (success or failure).", "listener", "result"),

		endpointUp:         d("endpoint_up", "1 when the endpoint takes new connections: its last dial worked, its health checks pass, it is no learner, not catching up, has no alarm of its own and is not drained.", le...),
		endpointOpen:       d("endpoint_connections_open", "Connections open to the endpoint now.", le...),
		endpointTotal:      d("endpoint_connections_total", "Connections made to the endpoint.", le...),
		endpointDialErrors: d("endpoint_dial_errors_total", "Failed dials to the endpoint.", le...),
		endpointBytes:      d("endpoint_bytes_total", "Bytes forwarded through connections to the endpoint, counted as they are forwarded, by open connections too; direction is to_upstream or to_client.", "listener", "endpoint", "direction"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.buildInfo, c.reloads, c.lastReloadSuccess, c.lastReloadSuccessful,
		c.acceptPausedTotal, c.acceptPaused,
		c.listenerInfo, c.listenerOpen, c.listenerTotal, c.listenerRejected,
		c.listenerIdleClosed, c.listenerNoUpstream, c.listenerBytes, c.listenerTLSFailures,
		c.listenerFailovers, c.listenerMaxConns, c.dnsLookups,
		c.endpointUp, c.endpointOpen, c.endpointTotal, c.endpointDialErrors, c.endpointBytes,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	goVersion := "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	gauge(c.buildInfo, 1, buildinfo.Short(), goVersion)

	st := c.g.Stats()
	counter(c.reloads, st.Applied, resultApplied)
	counter(c.reloads, st.Rejected, resultRejected)
	counter(c.reloads, st.Unchanged, resultUnchanged)
	gauge(c.lastReloadSuccess, float64(st.LastApplied.UnixNano())/1e9)
	gauge(c.lastReloadSuccessful, boolValue(st.LastError == ""))
	pauses, paused := c.g.group.AcceptPauses()
	counter(c.acceptPausedTotal, pauses)
	gauge(c.acceptPaused, float64(paused))

	for _, ls := range c.g.group.Status() {
		c.collectListener(ls, counter, gauge)
	}
}

func (c *collector) collectListener(ls reconcile.Status,
	counter func(*prometheus.Desc, uint64, ...string), gauge func(*prometheus.Desc, float64, ...string)) {
	name := ls.Config.Name
	source := "static"
	if ls.Config.DiscoverySRV != "" {
		source = "srv:" + ls.Config.DiscoverySRV
	}
	gauge(c.listenerInfo, 1, name, ls.Addr, source)
	gauge(c.listenerOpen, float64(ls.OpenConns), name)
	counter(c.listenerTotal, ls.Counters.Accepted, name)
	counter(c.listenerRejected, ls.Counters.Rejected, name)
	counter(c.listenerIdleClosed, ls.Counters.IdleClosed, name)
	counter(c.listenerNoUpstream, ls.Counters.NoUpstream, name)
	counter(c.listenerTLSFailures, ls.Counters.TLSHandshakeFailures, name)
	counter(c.listenerBytes, ls.Counters.BytesToUpstream, name, toUpstream)
	counter(c.listenerBytes, ls.Counters.BytesToClient, name, toClient)
	counter(c.listenerFailovers, ls.Failovers, name)
	gauge(c.listenerMaxConns, float64(ls.Limits.MaxConns), name)
	if ls.DNS != nil {
		counter(c.dnsLookups, ls.DNS.Succeeded(), name, "success")
		counter(c.dnsLookups, ls.DNS.Failed(), name, "failure")
	}
	for _, ep := range ls.Endpoints {
		gauge(c.endpointUp, boolValue(ep.Up()), name, ep.Addr)
		gauge(c.endpointOpen, float64(ep.OpenConns), name, ep.Addr)
		counter(c.endpointTotal, ep.TotalConns, name, ep.Addr)
		counter(c.endpointDialErrors, ep.DialErrors, name, ep.Addr)
		counter(c.endpointBytes, ep.BytesToUpstream, name, ep.Addr, toUpstream)
		counter(c.endpointBytes, ep.BytesToClient, name, ep.Addr, toClient)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
