package resolver

import (
	"context"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// Refresher resolves an SRV discovery again at an interval and hands each
// new endpoint set to Update. DNS trouble never empties the set: when a
// resolution fails or finds nothing usable, the last good set stays and a
// warning is logged; when only one of the two SRV names fails to answer,
// that name's endpoints from the last good set are kept beside the other
// name's new answer.
type Refresher struct {
	SRV SRV
	// Interval is the time between the end of one resolution and the start
	// of the next (dns-refresh); zero or less means 30s.
	Interval time.Duration
	// Update receives each set that differs from the previous one; it is
	// never called with an empty set. Calls are sequential.
	Update func([]Endpoint)
	// Log receives the warnings; it should carry the listener name.
	Log logrus.FieldLogger
	// Counters, when set, count each resolution by result.
	Counters *LookupCounters
}

// Run refreshes until ctx is done. last is the resolution in force, whose
// endpoints the caller already uses.
func (r Refresher) Run(ctx context.Context, last Result) {
	if r.Interval <= 0 {
		r.Interval = 30 * time.Second
	}
	current := last.Endpoints
	warned := dropKeys(last.Dropped)
	t := time.NewTimer(r.Interval)
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
		if r.Counters != nil {
			r.Counters.Observe(err)
		}
		warned = r.logDropped(res.Dropped, warned)
		next := current
		if err != nil {
			r.Log.WithFields(logrus.Fields{"error": err.Error(), "endpoints": addrs(current)}).
				Warn("SRV discovery failed; keeping the last good endpoints")
		} else {
			next = r.merge(res, current)
		}
		if !slices.Equal(next, current) {
			current = next
			r.Update(next)
		}
		t.Reset(r.Interval)
	}
}

// merge returns res's endpoints plus, for each SRV name that failed to
// answer, that name's endpoints from current.
func (r Refresher) merge(res Result, current []Endpoint) []Endpoint {
	next := slices.Clone(res.Endpoints)
	for _, l := range res.Lookups {
		if l.Err == nil {
			continue
		}
		r.Log.WithFields(logrus.Fields{"name": l.Name, "error": l.Err.Error()}).
			Warn("SRV lookup failed; keeping this name's last good endpoints")
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
