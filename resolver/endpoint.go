// Package resolver turns a listener's source, a static list or a DNS SRV
// domain, into sets of endpoints, re-resolves them and keeps the last good set.
package resolver

// Endpoint is one etcd member address as found by a source.
type Endpoint struct {
	// Addr is host:port; host may be a name, which Hosts resolves in the
	// background for the dials.
	Addr string
	// Priority and Weight come from SRV records (RFC 2782); static
	// endpoints have both zero.
	Priority uint16
	Weight   uint16
	// TLS is true when the endpoint was discovered through
	// _etcd-client-ssl records and so speaks TLS.
	TLS bool
}

// Static returns the endpoints of a static address list, in order.
func Static(addrs []string) []Endpoint {
	eps := make([]Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = Endpoint{Addr: a}
	}
	return eps
}
