package gateway

import (
	"net"
	"sync"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/buildinfo"
)

// changeSample is how often the gateway looks at its endpoints to date
// their changes of state, so that the status page can say "down for 3m"
// to within this much, whoever asks and however seldom.
const changeSample = time.Second

// endpointChanges remembers, per listener and endpoint, the state it was
// last seen in and since when: the pool keeps no history, and an operator
// at 3 a.m. wants to know whether a member went down a minute ago or last
// week.
type endpointChanges struct {
	mu   sync.Mutex
	seen map[endpointKey]seenState
	stop chan struct{}
	done chan struct{}
}

type endpointKey struct{ listener, address string }

type seenState struct {
	state string // State, Health and the kind of Reason
	since time.Time
}

func newEndpointChanges() *endpointChanges {
	return &endpointChanges{seen: map[endpointKey]seenState{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// run samples the gateway's status every changeSample until stopped.
func (c *endpointChanges) run(g *Gateway) {
	defer close(c.done)
	g.Status() // date the endpoints as they start
	t := time.NewTicker(changeSample)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			g.Status() // observes
		}
	}
}

// close stops run and waits for it.
func (c *endpointChanges) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// observe records the endpoints' states at now and sets each endpoint's
// Since: when it entered the state it is in, or when it was first seen in
// the pool (its addition, or the gateway's start). Endpoints no longer in
// a pool are forgotten.
func (c *endpointChanges) observe(listeners []ListenerStatus, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	present := make(map[endpointKey]bool)
	for i := range listeners {
		ls := &listeners[i]
		for j := range ls.Endpoints {
			ep := &ls.Endpoints[j]
			k := endpointKey{ls.Name, ep.Address}
			present[k] = true
			state := ep.State + "/" + ep.Health + "/" + reasonKind(ep.Reason)
			old, ok := c.seen[k]
			if !ok || old.state != state {
				old = seenState{state: state, since: now}
				c.seen[k] = old
			}
			since := old.since
			ep.Since = &since
		}
	}
	for k := range c.seen {
		if !present[k] {
			delete(c.seen, k)
		}
	}
}

// reasonKind is the part of a reason that makes a change: a health check
// failing with a new message is no new state.
func reasonKind(r string) string {
	for _, p := range []string{reasonDrained, reasonCheck, reasonDial, reasonDNS, reasonDNSStale, reasonLearner, reasonCatchingUp, reasonAlarm, reasonSlowStart, reasonAwaiting} {
		if len(r) >= len(p) && r[:len(p)] == p {
			return p
		}
	}
	return r
}

// The beginnings of EndpointStatus.Reason.
const (
	reasonCheck    = "health check failed"
	reasonDial     = "dial failed"
	reasonDNS      = "DNS: no address"
	reasonDNSStale = "DNS failing"
	reasonDrained  = "drained"
)

// setReasons fills each endpoint's Reason: why it takes no new
// connections, or why it may soon not (DNS serving old answers).
func setReasons(ls *ListenerStatus) {
	names := map[string]NameStatus{}
	if ls.DNS != nil {
		for _, n := range ls.DNS.Names {
			names[n.Name] = n
		}
	}
	for i := range ls.Endpoints {
		ep := &ls.Endpoints[i]
		if ep.Drained {
			ep.Reason = reasonDrained + ": it takes no new connections until `etcd-gateway undrain " + ls.Name + " " + ep.Address + "`"
			continue
		}
		switch ep.Health {
		case healthUnhealthy:
			ep.Reason = reasonCheck + ": " + ep.CheckError
			continue
		case healthUnreachable:
			ep.Reason = reasonDial + ": the last dial to it failed"
			continue
		}
		if r := readinessReason(ep); r != "" {
			ep.Reason = r
			continue
		}
		host, _, err := net.SplitHostPort(ep.Address)
		if err != nil || net.ParseIP(host) != nil {
			continue
		}
		n, ok := names[host]
		if !ok {
			continue
		}
		switch n.State {
		case "pending", "gone", "expired":
			ep.Reason = reasonDNS + ": " + host + " is " + n.State + dnsError(n)
		case "failing":
			ep.Reason = reasonDNSStale + ": " + host + " is served from its last good answer" + dnsError(n)
		}
	}
}

func dnsError(n NameStatus) string {
	if n.LastError == "" {
		return ""
	}
	return " (" + n.LastError + ")"
}

// annotate adds to st what status.go's snapshot lacks: the version, the
// uptime, each endpoint's reason and the time of its last change.
func (g *Gateway) annotate(st *Status) {
	now := time.Now()
	st.Version = buildinfo.Version()
	st.UptimeSeconds = now.Sub(g.started).Seconds()
	for i := range st.Listeners {
		setReasons(&st.Listeners[i])
	}
	if g.changes != nil {
		g.changes.observe(st.Listeners, now)
	}
}
