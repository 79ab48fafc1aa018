package resolver

import (
	"context"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// Refresher resolves an SRV discovery again when its records' TTL runs
// out, within [MinInterval, Interval], and hands each new endpoint set to
// Update. DNS trouble never empties the set: when a resolution fails or
// finds nothing usable, the last good set stays; when only one of the two
// SRV names fails to answer, that name's endpoints from the last good set
// are kept beside the other name's new answer. Failures are retried with
// backoff and logged when they start, when they end, and at most once a
// minute between.
type Refresher struct {
	SRV SRV
	// Interval is the longest time between the end of one resolution and
	// the start of the next (dns-refresh); zero or less means 30s.
	Interval time.Duration
	// MinInterval is the shortest; zero means MinRefresh.
	MinInterval time.Duration
	// Update receives each set that differs from the previous one; it is
	// never called with an empty set. Calls are sequential.
	Update func([]Endpoint)
	// Log receives the warnings; it should carry the listener name.
	Log logrus.FieldLogger
	// Counters, when set, count each resolution by result and keep the
	// last one's state.
	Counters *LookupCounters
}

// Run refreshes until ctx is done. last is the resolution in force, whose
// endpoints the caller already uses; it may have none, when the first
// resolution could not reach DNS: then the first good one is handed over.
func (r Refresher) Run(ctx context.Context, last Result) {
	if r.Interval <= 0 {
		r.Interval = 30 * time.Second
	}
	if r.MinInterval <= 0 {
		r.MinInterval = MinRefresh
	}
	run := refreshRun{Refresher: r, current: last.Endpoints, warned: dropKeys(last.Dropped)}
	t := time.NewTimer(run.delay(last, nil))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := r.SRV.Resolve(ctx)
		if ctx.Err() != nil {
			return
		}
		run.handle(res, err)
		t.Reset(run.delay(res, err))
	}
}

// refreshRun is the state of one Run.
type refreshRun struct {
	Refresher
	current  []Endpoint
	warned   map[string]bool
	failures int // resolutions in a row that failed
	since    time.Time
	lastWarn time.Time
}

// handle takes one resolution's outcome.
func (run *refreshRun) handle(res Result, err error) {
	if run.Counters != nil {
		run.Counters.Observe(err)
		run.Counters.record(res, err)
	}
	run.warned = run.logDropped(res.Dropped, run.warned)
	next := run.current
	if err != nil {
		run.failed(err)
	} else {
		run.succeeded()
		next = run.merge(res, run.current)
	}
	if len(next) > 0 && !slices.Equal(next, run.current) {
		run.current = next
		run.Update(next)
	}
}

// failed logs a failed resolution: the first of a run, then at most once
// a minute.
func (run *refreshRun) failed(err error) {
	now := time.Now()
	run.failures++
	if run.failures == 1 {
		run.since = now
	} else if now.Sub(run.lastWarn) < failureLogEvery {
		return
	}
	run.lastWarn = now
	run.Log.WithFields(logrus.Fields{"error": err.Error(), "endpoints": addrs(run.current), "failures": run.failures, "source": "dns"}).
		Warn("SRV discovery failed; keeping the last good endpoints")
}

func (run *refreshRun) succeeded() {
	if run.failures > 0 {
		run.Log.WithFields(logrus.Fields{"failures": run.failures, "outage": time.Since(run.since).Round(time.Millisecond).String(), "source": "dns"}).
			Info("SRV discovery succeeds again")
	}
	run.failures = 0
}

// delay is the time until the next resolution after res and err.
func (run *refreshRun) delay(res Result, err error) time.Duration {
	if err != nil && run.failures > 0 {
		return backoff(run.failures, run.MinInterval, run.Interval)
	}
	return refreshDelay(res.TTL(), run.MinInterval, run.Interval)
}

// merge returns res's endpoints plus, for each SRV name that failed to
// answer, that name's endpoints from current.
func (r Refresher) merge(res Result, current []Endpoint) []Endpoint {
	next := slices.Clone(res.Endpoints)
	for _, l := range res.Lookups {
		if l.Err == nil {
			continue
		}
		r.Log.WithFields(logrus.Fields{"name": l.Name, "error": l.Err.Error(), "source": "dns"}).
			Debug("SRV lookup failed; keeping this name's last good endpoints")
		for _, ep := range current {
			if ep.TLS == l.TLS && !slices.ContainsFunc(next, func(e Endpoint) bool { return e.Addr == ep.Addr }) {
				next = append(next, ep)
			}
		}
	}
	sortEndpoints(next)
	return next
}

// logDropped warns about each dropped record, unless the same record was
// dropped for the same reason by the previous resolution (warned); it
// returns the keys to pass next time.
func (r Refresher) logDropped(dropped []Dropped, warned map[string]bool) map[string]bool {
	keys := dropKeys(dropped)
	for _, d := range dropped {
		log := r.Log.WithFields(logrus.Fields{"endpoint": d.Addr, "reason": d.Reason})
		if warned[d.Addr+"\x00"+d.Reason] {
			log.Debug("discovered endpoint dropped")
		} else {
			log.Warn("discovered endpoint dropped")
		}
	}
	return keys
}

func dropKeys(dropped []Dropped) map[string]bool {
	keys := make(map[string]bool, len(dropped))
	for _, d := range dropped {
		keys[d.Addr+"\x00"+d.Reason] = true
	}
	return keys
}

func addrs(eps []Endpoint) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.Addr
	}
	return out
}
