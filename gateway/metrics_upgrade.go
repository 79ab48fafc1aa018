package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcd-gateway/etcd-gateway/gateway/upgrade"
)

// Label values of the upgrade metrics: whether the sockets came into this
// process or went out of it, and through what.
const (
	upgradeIn       = "in"
	upgradeOut      = "out"
	viaHandover     = "handover"
	viaFDStore      = "fdstore"
	upgradeSubsystm = "upgrade"
)

// upgradeStats counts what handovers and the file descriptor store moved,
// so that an upgrade that left connections behind shows in the metrics of
// both processes.
type upgradeStats struct {
	listeners *prometheus.CounterVec
	conns     *prometheus.CounterVec
	drained   prometheus.Counter
	duration  prometheus.Gauge
}

// newUpgradeStats makes the upgrade metrics.
func newUpgradeStats() *upgradeStats {
	return &upgradeStats{
		listeners: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd_gateway", Subsystem: upgradeSubsystm, Name: "listeners_passed_total",
			Help: "Listening sockets (the admin server's included) passed to a new process or taken from an old one, or through systemd's file descriptor store.",
		}, []string{"direction", "via"}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd_gateway", Subsystem: upgradeSubsystm, Name: "connections_handed_over_total",
			Help: "Open connections handed to a new process or adopted from an old one, or through systemd's file descriptor store.",
		}, []string{"direction", "via"}),
		drained: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd_gateway", Subsystem: upgradeSubsystm, Name: "connections_drained_total",
			Help: "Open connections a handover left to drain in this process: TLS ones, and those whose destination did not take their bytes in time.",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "etcd_gateway", Subsystem: upgradeSubsystm, Name: "last_handover_seconds",
			Help: "How long the last handover to or from this process took, from the first message to the last.",
		}),
	}
}

// collectors are the metrics to register.
func (s *upgradeStats) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.listeners, s.conns, s.drained, s.duration}
}

// tookOver counts a handover from an old process.
func (s *upgradeStats) tookOver(sum upgrade.Summary, adopted int) {
	s.listeners.WithLabelValues(upgradeIn, viaHandover).Add(float64(sum.Listeners + boolInt(sum.Admin)))
	s.conns.WithLabelValues(upgradeIn, viaHandover).Add(float64(adopted))
	s.duration.Set(sum.Duration.Seconds())
}

// handedOver counts a handover to a new process.
func (s *upgradeStats) handedOver(sum upgrade.Summary) {
	s.listeners.WithLabelValues(upgradeOut, viaHandover).Add(float64(sum.Listeners + boolInt(sum.Admin)))
	s.conns.WithLabelValues(upgradeOut, viaHandover).Add(float64(sum.Conns))
	s.drained.Add(float64(sum.Left))
	s.duration.Set(sum.Duration.Seconds())
}

// fromStore counts what a start took from the file descriptor store.
func (s *upgradeStats) fromStore(listeners, conns int) {
	s.listeners.WithLabelValues(upgradeIn, viaFDStore).Add(float64(listeners))
	s.conns.WithLabelValues(upgradeIn, viaFDStore).Add(float64(conns))
}

// toStore counts what a stop put in the file descriptor store.
func (s *upgradeStats) toStore(listeners, conns int) {
	s.listeners.WithLabelValues(upgradeOut, viaFDStore).Add(float64(listeners))
	s.conns.WithLabelValues(upgradeOut, viaFDStore).Add(float64(conns))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
