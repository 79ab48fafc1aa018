package reconcile

import (
	"crypto/tls"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// poolSettings returns the pool settings of a listener, with its TLS files
// loaded. Errors are *config.KeyError.
func poolSettings(lc config.Listener) (upstream.Settings, error) {
	clientConf, err := clientTLS(lc.UpstreamTLS)
	if err != nil {
		return upstream.Settings{}, err
	}
	discoveredConf, err := discoveryTLS(lc.TrustedCAFile)
	if err != nil {
		return upstream.Settings{}, err
	}
	var originate *tls.Config
	if lc.UpstreamTLS.Originates() {
		originate = originateTLS(clientConf)
	}
	return upstream.Settings{
		DialTimeout:       lc.DialTimeout,
		RetryDelay:        lc.RetryDelay,
		OnEndpointRemoved: lc.OnEndpointRemoved,
		DrainTimeout:      lc.DrainTimeout,
		Policy:            lc.Policy,
		SlowStart:         lc.SlowStart,
		Rebalance:         lc.Rebalance,
		MaxConnectionAge:  lc.MaxConnectionAge,
		HealthCheck: upstream.HealthCheck{
			Type:          lc.HealthCheck.Type,
			Interval:      lc.HealthCheck.Interval,
			Timeout:       lc.HealthCheck.Timeout,
			Fall:          lc.HealthCheck.Fall,
			Rise:          lc.HealthCheck.Rise,
			LeaderlessMax: lc.HealthCheck.LeaderlessMax,
			LagMax:        lc.HealthCheck.LagMax,
			SuspectAfter:  lc.HealthCheck.SuspectAfter,
		},
		OnUnhealthy:   lc.OnUnhealthy,
		MemberSync:    lc.MemberSync,
		TLS:           clientConf,
		DiscoveredTLS: discoveredConf,
		TLSEndpoints:  lc.TLSEndpoints,
		Originate:     originate,
	}, nil
}
