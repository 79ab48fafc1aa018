package upstream

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// ClusterAlarm is an alarm that every member of a pool whose check sees
// alarms reports. etcd replicates alarms: NOSPACE fails /health on every
// member at once, reads still work, and moving clients can't help, so
// such an alarm marks no member down; it is reported instead.
type ClusterAlarm struct {
	Name string
	// Since is when the pool first found it cluster-wide.
	Since time.Time
}

// alarmBook is a pool's cluster-wide alarms, with since when.
type alarmBook struct {
	mu    sync.Mutex
	since map[string]time.Time
}

// ClusterAlarms returns the pool's cluster-wide alarms, by name.
func (p *Pool) ClusterAlarms() []ClusterAlarm {
	p.alarms.mu.Lock()
	defer p.alarms.mu.Unlock()
	out := make([]ClusterAlarm, 0, len(p.alarms.since))
	for _, name := range slices.Sorted(maps.Keys(p.alarms.since)) {
		out = append(out, ClusterAlarm{Name: name, Since: p.alarms.since[name]})
	}
	return out
}

// observeAlarms reads again what the pool's members report: the
// cluster-wide alarms, and each member's own. A member whose alarm no
// other member has reported for grace (a view of its own, not the
// cluster's: it lags) is kept from new connections; grace lets a
// replicated alarm reach every member's checks first, raised or cleared.
func (p *Pool) observeAlarms(grace time.Duration) {
	eps := p.Endpoints()
	wide := clusterWide(eps)
	now := time.Now()
	p.alarms.mu.Lock()
	defer p.alarms.mu.Unlock()
	p.trackAlarms(wide, now)
	for _, ep := range eps {
		p.judgeAlarms(ep, wide, now, grace)
	}
}

// clusterWide returns the alarms that every endpoint reports whose last
// check answered and saw its alarms; endpoints that don't count neither
// way.
func clusterWide(eps []*Endpoint) []string {
	var wide []string
	first := true
	for _, ep := range eps {
		f := ep.facts.Load()
		if f == nil || !f.answered || !f.alarmsKnown || ep.removed.Load() {
			continue
		}
		if first {
			wide, first = f.alarms, false
			continue
		}
		wide = slices.DeleteFunc(slices.Clone(wide), func(a string) bool { return !slices.Contains(f.alarms, a) })
	}
	return wide
}

// trackAlarms dates the cluster-wide alarms that are new and forgets
// those that ended, logging both. The caller holds alarms.mu.
func (p *Pool) trackAlarms(wide []string, now time.Time) {
	if p.alarms.since == nil {
		p.alarms.since = map[string]time.Time{}
	}
	for _, a := range wide {
		if _, ok := p.alarms.since[a]; !ok {
			p.alarms.since[a] = now
			p.log.WithField("alarm", a).Warn("cluster alarm: every member reports it; the members stay up, since moving clients can't help")
		}
	}
	for a, since := range p.alarms.since {
		if !slices.Contains(wide, a) {
			delete(p.alarms.since, a)
			p.log.WithFields(logrus.Fields{"alarm": a, "since": since}).Info("cluster alarm cleared")
		}
	}
}

// judgeAlarms keeps ep from new connections while it reports an alarm
// that isn't cluster-wide, once that has lasted grace. The caller holds
// alarms.mu.
func (p *Pool) judgeAlarms(ep *Endpoint, wide []string, now time.Time, grace time.Duration) {
	f := ep.facts.Load()
	apart := f != nil && slices.ContainsFunc(f.alarms, func(a string) bool { return !slices.Contains(wide, a) })
	local := false
	if !apart {
		ep.alarmApart.Store(0)
	} else {
		ep.alarmApart.CompareAndSwap(0, now.UnixNano())
		local = now.Sub(time.Unix(0, ep.alarmApart.Load())) >= grace
	}
	if ep.localAlarm.Swap(local) == local {
		return
	}
	log := p.log.WithField("endpoint", ep.addr)
	if local {
		log.WithFields(logrus.Fields{"alarms": strings.Join(f.alarms, ","), "cluster": strings.Join(wide, ",")}).
			Warn("endpoint reports an alarm the other members don't: no new connections")
		return
	}
	log.Info("endpoint's own alarm is over: it takes new connections")
}
