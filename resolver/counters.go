package resolver

import "sync/atomic"

// LookupCounters counts the DNS lookups of one listener's source by
// result, for the gateway's metrics (etcd_gateway_dns_lookups_total). The
// SRV resolver calls Observe after each lookup; the metrics read the
// counts. The zero value is ready to use; it is safe for concurrent use.
type LookupCounters struct {
	succeeded atomic.Uint64
	failed    atomic.Uint64
}

// Observe counts one lookup, which failed when err is not nil.
func (c *LookupCounters) Observe(err error) {
	if err != nil {
		c.failed.Add(1)
		return
	}
	c.succeeded.Add(1)
}

// Succeeded is the number of lookups that returned an answer.
func (c *LookupCounters) Succeeded() uint64 { return c.succeeded.Load() }

// Failed is the number of lookups that returned an error.
func (c *LookupCounters) Failed() uint64 { return c.failed.Load() }
