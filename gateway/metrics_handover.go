package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/etcd-gateway/etcd-gateway/gateway/handover"
)

// The handover metrics keep their user-facing names (subsystem
// "upgrade"); their direction label says whether the sockets came into
// this process or went out of it, and their via label the transport
// (handover.ViaSocket, handover.ViaStore).
const (
	metricIn         = "in"
	metricOut        = "out"
	handoverSubsystm = "upgrade"
)

// handoverStats counts what handovers moved, by either transport, so that
// a handover that left connections behind shows in the metrics of both
// processes.
type handoverStats struct {
	listeners *prometheus.CounterVec
	conns     *prometheus.CounterVec
	drained   prometheus.Counter
	duration  prometheus.Gauge
}

// newHandoverStats makes the handover metrics.
func newHandoverStats() *handoverStats {
	return &handoverStats{
		listeners: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd_gateway", Subsystem: handoverSubsystm, Name: "listeners_passed_total",
			Help: "Listening sockets (the admin server's included) passed to a new process or taken from an old one, or through systemd's file descriptor store.",
		}, []string{"direction", "via"}),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "etcd_gateway", Subsystem: handoverSubsystm, Name: "connections_handed_over_total",
			Help: "Open connections handed to a new process or adopted from an old one, or through systemd's file descriptor store.",
		}, []string{"direction", "via"}),
		drained: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "etcd_gateway", Subsystem: handoverSubsystm, Name: "connections_drained_total",
			Help: "Open connections a handover left to drain in this process: TLS ones, and those whose destination did not take their bytes in time.",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "etcd_gateway", Subsystem: handoverSubsystm, Name: "last_handover_seconds",
			Help: "How long the last handover to or from this process took, from the first message to the last.",
		}),
	}
}

// collectors are the metrics to register.
func (s *handoverStats) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.listeners, s.conns, s.drained, s.duration}
}

// received counts a handover this process received, by either transport.
func (s *handoverStats) received(sum handover.Summary) {
	s.listeners.WithLabelValues(metricIn, sum.Via).Add(float64(sum.Listeners + boolInt(sum.Admin)))
	s.conns.WithLabelValues(metricIn, sum.Via).Add(float64(sum.Adopted))
	if sum.Via == handover.ViaSocket {
		s.duration.Set(sum.Duration.Seconds())
	}
}

// gave counts a handover this process gave, by either transport.
func (s *handoverStats) gave(sum handover.Summary) {
	s.listeners.WithLabelValues(metricOut, sum.Via).Add(float64(sum.Listeners + boolInt(sum.Admin)))
	s.conns.WithLabelValues(metricOut, sum.Via).Add(float64(sum.Conns))
	if sum.Via == handover.ViaSocket {
		s.drained.Add(float64(sum.Left))
		s.duration.Set(sum.Duration.Seconds())
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
