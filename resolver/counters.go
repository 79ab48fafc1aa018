package resolver

import (
	"sync/atomic"
	"time"
)

// LookupCounters counts the DNS lookups of one listener's source by
// result, for the gateway's metrics (etcd_gateway_dns_lookups_total). The
// SRV resolver calls Observe after each lookup; the metrics read the
// counts. The zero value is ready to use; it is safe for concurrent use.
type LookupCounters struct {
	succeeded atomic.Uint64
	failed    atomic.Uint64
	state     atomic.Pointer[SRVState]
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

// SRVState is what a listener's SRV discovery last saw, for /status.
type SRVState struct {
	// Names are the SRV names queried.
	Names []string
	// ResolvedAt is when the last good resolution came, with its records'
	// smallest TTL; zero when none did.
	ResolvedAt time.Time
	TTL        time.Duration
	// Failing is true when the last resolution failed; LastError is the
	// last failure's error, at LastErrorAt.
	Failing     bool
	LastError   string
	LastErrorAt time.Time
}

// State returns what the last resolutions saw.
func (c *LookupCounters) State() SRVState {
	if st := c.state.Load(); st != nil {
		return *st
	}
	return SRVState{}
}

// record keeps the outcome of one resolution.
func (c *LookupCounters) record(res Result, err error) {
	st := c.State()
	st.Names = res.Queried()
	st.Failing = err != nil
	if err != nil {
		st.LastError, st.LastErrorAt = err.Error(), time.Now()
	} else {
		st.ResolvedAt, st.TTL = time.Now(), res.TTL()
	}
	c.state.Store(&st)
}

// Record keeps the outcome of a resolution made outside a Refresher (the
// first one, at start or reload), and counts it.
func (c *LookupCounters) Record(res Result, err error) {
	c.Observe(err)
	c.record(res, err)
}
