package upstream

import (
	"sync/atomic"
	"time"
)

// durationBounds are the upper bounds, in seconds, of the buckets that
// dial and health-check durations are counted into: from a dial on the
// same rack (a fraction of a millisecond) to a dial that runs into a
// dial-timeout of several seconds. A function, not a variable, so that no
// caller can change them.
func durationBounds() [numBuckets]float64 {
	return [numBuckets]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
}

// numBuckets is the number of finite buckets; one more counts the rest.
const numBuckets = 13

// Histogram counts durations into fixed buckets with atomic counters, so
// that the dial path pays two atomic adds and no lock, and the gateway's
// metrics turn it into a Prometheus histogram at scrape time without this
// package knowing Prometheus. The zero value is ready; it is safe for
// concurrent use.
type Histogram struct {
	counts [numBuckets + 1]atomic.Uint64 // the last one is +Inf
	sumNs  atomic.Int64
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	bounds := durationBounds()
	i := 0
	for i < numBuckets && s > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// HistogramSnapshot is a Histogram read at one moment, in the form
// Prometheus's const histograms take.
type HistogramSnapshot struct {
	// Count is the number of durations counted, Sum their total in
	// seconds.
	Count uint64
	Sum   float64
	// Buckets maps each upper bound (seconds) to the number of durations
	// at most that long: cumulative, as Prometheus wants.
	Buckets map[float64]uint64
}

// Snapshot reads the histogram. The buckets are read one by one while
// observations may go on, so Count is computed from them: the snapshot is
// consistent with itself, if not with one instant.
func (h *Histogram) Snapshot() HistogramSnapshot {
	bounds := durationBounds()
	out := HistogramSnapshot{Buckets: make(map[float64]uint64, numBuckets)}
	var cum uint64
	for i := range numBuckets {
		cum += h.counts[i].Load()
		out.Buckets[bounds[i]] = cum
	}
	out.Count = cum + h.counts[numBuckets].Load()
	out.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return out
}

// Timings are an endpoint's dial and health-check durations and its
// health-check results, for dashboards: how long reaching a member takes,
// and how its checks go. They are counted from the endpoint's creation
// and kept across updates that keep it, as its other counters.
type Timings struct {
	dial, check           Histogram
	checksOK, checkFailed atomic.Uint64
}

// observeDial counts a dial that started at start and ends now, whatever
// its result (a failed dial is also counted in DialErrors).
func (t *Timings) observeDial(start time.Time) { t.dial.Observe(time.Since(start)) }

// observeCheck counts a health check that started at start, ends now, and
// failed with err (nil: passed).
func (t *Timings) observeCheck(start time.Time, err error) {
	t.check.Observe(time.Since(start))
	if err != nil {
		t.checkFailed.Add(1)
	} else {
		t.checksOK.Add(1)
	}
}

// Dial reads the dial durations: TCP connect, plus the TLS handshake when
// the listener originates TLS.
func (t *Timings) Dial() HistogramSnapshot { return t.dial.Snapshot() }

// Check reads the health-check durations.
func (t *Timings) Check() HistogramSnapshot { return t.check.Snapshot() }

// CheckResults returns the number of health checks that passed and that
// failed.
func (t *Timings) CheckResults() (passed, failed uint64) {
	return t.checksOK.Load(), t.checkFailed.Load()
}

// Timings are the endpoint's dial and health-check durations and results.
func (ep *Endpoint) Timings() *Timings { return &ep.timings }
