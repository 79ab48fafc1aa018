package upstream

import (
	"crypto/tls"
	"slices"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// endpointTLS is how the etcd check and member sync talk to one endpoint.
// It is comparable, so that it can be part of a shared checker's key: two
// pools whose checks of a member use the same settings share the checker.
type endpointTLS struct {
	// on says to speak TLS.
	on bool
	// conf is the TLS settings; nil with on means the system roots.
	conf *tls.Config
	// upstream says that conf is the listener's upstream-tls block, which
	// the fallback's advice names.
	upstream bool
}

// tlsFor decides the TLS settings for talking to re, the one place that
// does: the listener's upstream-tls block when it has one, else, for a TLS
// member (discovered through _etcd-client-ssl, synced from an https URL,
// or given as https://), the discovery CA (trusted-ca-file) or the system
// roots; plain TCP for the rest.
func tlsFor(s *Settings, re resolver.Endpoint) endpointTLS {
	switch {
	case s.TLS != nil:
		return endpointTLS{on: true, conf: s.TLS, upstream: true}
	case re.TLS || slices.Contains(s.TLSEndpoints, re.Addr):
		return endpointTLS{on: true, conf: s.DiscoveredTLS}
	default:
		return endpointTLS{}
	}
}

// config returns the settings to dial with, or nil for plain TCP.
func (t endpointTLS) config() *tls.Config {
	if t.on && t.conf == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return t.conf
}

// scheme is the URL scheme of the etcd check.
func (t endpointTLS) scheme() string {
	if t.on {
		return "https"
	}
	return "http"
}

// roots names the CAs the member is verified with, and the fix when they
// don't verify it.
func (t endpointTLS) roots() (roots, fix string) {
	switch {
	case t.upstream && t.conf.RootCAs != nil:
		return "upstream-tls ca-file", fixCAUpstream
	case t.upstream:
		return "the system roots (upstream-tls has no ca-file)", fixCAUpstream
	case t.conf != nil && t.conf.RootCAs != nil:
		return "trusted-ca-file", fixCADiscovered
	default:
		return "the system roots (no trusted-ca-file nor upstream-tls ca-file)", fixCADiscovered
	}
}

// hasClientCert reports whether a client certificate is offered: only an
// upstream-tls block with cert-file offers one.
func (t endpointTLS) hasClientCert() bool {
	return t.upstream && (len(t.conf.Certificates) > 0 || t.conf.GetClientCertificate != nil)
}
