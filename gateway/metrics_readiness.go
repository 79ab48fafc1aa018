package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcd-gateway/etcd-gateway/gateway/reconcile"
)

// readinessCollector exports what etcd's own state says of the members:
// the cluster-wide alarms, since when, and each endpoint's reasons to take
// no new connections, or fewer, beside its health (endpoint_up sums them
// up).
type readinessCollector struct {
	g                                             *Gateway
	clusterAlarm, learner, catchingUp, localAlarm *prometheus.Desc
	slowStart, leaderless                         *prometheus.Desc
	suspicionChecks, frozen                       *prometheus.Desc
}

func newReadinessCollector(g *Gateway) *readinessCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("etcd_gateway_"+name, help, labels, nil)
	}
	le := []string{"listener", "endpoint"}
	return &readinessCollector{
		g:               g,
		clusterAlarm:    d("cluster_alarm", "An etcd alarm every member of the listener's cluster reports (NOSPACE, CORRUPT): when the gateway first found it so, in Unix seconds. It marks no member down; the series exists while the alarm lasts.", "listener", "alarm"),
		learner:         d("endpoint_learner", "1 while the member is a learner: it gets no new connections until it is promoted.", le...),
		catchingUp:      d("endpoint_catching_up", "1 while the member, back after being down, is more than health-check.lag-max raft entries behind the cluster: it gets no new connections.", le...),
		localAlarm:      d("endpoint_local_alarm", "1 while the member reports an alarm the other members don't: it gets no new connections.", le...),
		slowStart:       d("endpoint_slow_start_share", "The share of its new connections the endpoint takes: below 1 during the slow start of a member back after being down.", le...),
		leaderless:      d("endpoint_leaderless_seconds", "How long the checks have found the member without a leader; 0 while it has one.", le...),
		suspicionChecks: d("endpoint_suspicion_checks_total", "Checks of the member run at once because bytes a client sent it waited health-check.suspect-after for an answer.", le...),
		frozen:          d("endpoint_frozen_total", "Times the member was found frozen (a check unanswered while a client's bytes waited too) and marked down at once.", le...),
	}
}

// Describe implements prometheus.Collector.
func (c *readinessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.clusterAlarm, c.learner, c.catchingUp, c.localAlarm, c.slowStart, c.leaderless, c.suspicionChecks, c.frozen} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *readinessCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, ls := range c.g.group.Status() {
		c.collectListener(ch, ls, now)
	}
}

func (c *readinessCollector) collectListener(ch chan<- prometheus.Metric, ls reconcile.Status, now time.Time) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	name := ls.Config.Name
	for _, a := range ls.ClusterAlarms {
		gauge(c.clusterAlarm, float64(a.Since.UnixNano())/1e9, name, a.Name)
	}
	for _, ep := range ls.Endpoints {
		gauge(c.learner, boolValue(ep.Learner), name, ep.Addr)
		gauge(c.catchingUp, boolValue(ep.CatchingUp), name, ep.Addr)
		gauge(c.localAlarm, boolValue(ep.LocalAlarm), name, ep.Addr)
		gauge(c.slowStart, ep.SlowStartShare, name, ep.Addr)
		leaderless := 0.0
		if !ep.LeaderlessSince.IsZero() {
			leaderless = now.Sub(ep.LeaderlessSince).Seconds()
		}
		gauge(c.leaderless, leaderless, name, ep.Addr)
		ch <- prometheus.MustNewConstMetric(c.suspicionChecks, prometheus.CounterValue, float64(ep.SuspicionChecks), name, ep.Addr)
		ch <- prometheus.MustNewConstMetric(c.frozen, prometheus.CounterValue, float64(ep.Frozen), name, ep.Addr)
	}
}
