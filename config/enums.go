package config

// The enumerated keys' values are typed, so that the runtime packages
// take them as they are instead of copying strings.

// OnRemoved is what happens to the open connections of an endpoint that a
// reload or a DNS refresh removes (key on-endpoint-removed).
type OnRemoved string

// The values of on-endpoint-removed.
const (
	// RemovedKeep leaves the connections open until they end.
	RemovedKeep OnRemoved = "keep"
	// RemovedDrain closes them after drain-timeout.
	RemovedDrain OnRemoved = "drain"
	// RemovedClose closes them at once.
	RemovedClose OnRemoved = "close"
)

// Policy is how a new connection's endpoint is picked (key policy).
type Policy string

// The pick policies.
const (
	// PolicyStickyRandom is etcd's gateway's: one endpoint at random,
	// kept while it is up.
	PolicyStickyRandom Policy = "sticky-random"
	// PolicyRoundRobin takes each endpoint in turn.
	PolicyRoundRobin Policy = "round-robin"
	// PolicyLeastConnections takes the endpoint with the fewest
	// connections.
	PolicyLeastConnections Policy = "least-connections"
)

// CheckType is the kind of health check (key health-check.type).
type CheckType string

// The health-check types.
const (
	// CheckNone checks nothing: only failed dials take an endpoint out.
	CheckNone CheckType = "none"
	// CheckTCP is a TCP connect within the timeout.
	CheckTCP CheckType = "tcp"
	// CheckEtcd is GET /health on the member's client port.
	CheckEtcd CheckType = "etcd"
)

// OnUnhealthy is what happens to the open connections of an endpoint that
// the health checks mark down (key on-unhealthy).
type OnUnhealthy string

// The values of on-unhealthy.
const (
	// UnhealthyKeep leaves them open, as etcd's gateway does.
	UnhealthyKeep OnUnhealthy = "keep"
	// UnhealthyClose closes them so that their clients reconnect to a
	// healthy member.
	UnhealthyClose OnUnhealthy = "close"
)

// names returns the values of an enumeration as strings, for the schema.
func names[T ~string](vals ...T) []string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = string(v)
	}
	return s
}
