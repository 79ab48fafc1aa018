package gateway

// Test hooks: what the tests may see of the gateway's internals.

// endpointValues lists every value of EndpointStatus.State and Health, so
// that a test holds the documentation of /status to them.
func endpointValues() []string {
	return []string{stateActive, stateInactive, stateDrained, healthHealthy, healthUnhealthy,
		healthReachable, healthUnreachable, healthUnknown}
}
