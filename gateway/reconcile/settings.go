package reconcile

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// poolSettings returns the pool settings of a listener, with its TLS files
// loaded. Errors are *keyError. config's enums go to upstream as strings
// until upstream takes config's types.
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
		OnEndpointRemoved: string(lc.OnEndpointRemoved),
		DrainTimeout:      lc.DrainTimeout,
		Policy:            string(lc.Policy),
		HealthCheck: upstream.HealthCheck{
			Type:     string(lc.HealthCheck.Type),
			Interval: lc.HealthCheck.Interval,
			Timeout:  lc.HealthCheck.Timeout,
			Fall:     lc.HealthCheck.Fall,
			Rise:     lc.HealthCheck.Rise,
		},
		OnUnhealthy:   string(lc.OnUnhealthy),
		MemberSync:    lc.MemberSync,
		TLS:           clientConf,
		DiscoveredTLS: discoveredConf,
		TLSEndpoints:  lc.TLSEndpoints,
		Originate:     originate,
	}, nil
}

// settingsError formats an error of poolSettings for the listener of file.
func settingsError(file, listener string, err error) error {
	var ke *keyError
	if errors.As(err, &ke) {
		return fmt.Errorf("%s: listener %q: key %q: %w", fileName(file), listener, ke.key, ke.err)
	}
	return fmt.Errorf("%s: listener %q: %w", fileName(file), listener, err)
}
