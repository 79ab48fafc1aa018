package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/reconcile"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// Status is what the admin server's /status returns, as JSON.
type Status struct {
	// ConfigFile is the configuration file; empty when the gateway runs on
	// command-line flags.
	ConfigFile string    `json:"config_file"`
	StartedAt  time.Time `json:"started_at"`
	// Version is the build's version (as `etcd-gateway version` says),
	// UptimeSeconds how long the gateway has run.
	Version       string  `json:"version"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	// Healthy and Health are /healthz's answer: "ok", or why not.
	Healthy   bool             `json:"healthy"`
	Health    string           `json:"health"`
	Reload    ReloadStatus     `json:"reload"`
	Listeners []ListenerStatus `json:"listeners"`
}

// ReloadStatus describes the configuration reloads.
type ReloadStatus struct {
	// LastAt and LastResult are the time and result of the last reload:
	// "applied", "rejected", "unchanged" (the file was read and matches
	// the running configuration), or "none" before the first.
	LastAt     *time.Time `json:"last_at,omitempty"`
	LastResult string     `json:"last_result"`
	// LastError is why the last reload was rejected.
	LastError string `json:"last_error,omitempty"`
	// LastAppliedAt is when the running configuration was applied.
	LastAppliedAt time.Time `json:"last_applied_at"`
	Applied       uint64    `json:"applied"`
	Rejected      uint64    `json:"rejected"`
	Unchanged     uint64    `json:"unchanged"`
}

// ListenerStatus describes one listener.
type ListenerStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Source  Source `json:"source"`
	// MaxConnections is 0 without a limit; IdleTimeout is "0s" when off.
	MaxConnections      int64  `json:"max_connections"`
	IdleTimeout         string `json:"idle_timeout"`
	KeepAlive           string `json:"keepalive"`
	OpenConnections     int64  `json:"open_connections"`
	TotalConnections    uint64 `json:"total_connections"`
	RejectedConnections uint64 `json:"rejected_connections"`
	Failovers           uint64 `json:"failovers"`
	// BytesToUpstream and BytesToClient count the bytes forwarded each
	// way as they move, by open connections too.
	BytesToUpstream uint64 `json:"bytes_to_upstream"`
	BytesToClient   uint64 `json:"bytes_to_client"`
	// Waiting says why the listener can't serve new clients now (DNS not
	// reached yet, no endpoint address); absent when it can.
	Waiting   string           `json:"waiting,omitempty"`
	DNS       *DNSStatus       `json:"dns,omitempty"`
	Endpoints []EndpointStatus `json:"endpoints"`
	// ClusterAlarms are the etcd alarms every member reports; they mark
	// no member down.
	ClusterAlarms []AlarmStatus `json:"cluster_alarms,omitempty"`
}

// Source is where a listener's endpoints come from.
type Source struct {
	// Type is "static" (an endpoints list) or "srv" (DNS SRV discovery).
	Type        string `json:"type"`
	Domain      string `json:"domain,omitempty"`
	ServiceName string `json:"service_name,omitempty"`
}

// EndpointStatus describes one endpoint of a listener.
type EndpointStatus struct {
	Address string `json:"address"`
	// State is "active" (takes new connections), "inactive" (a dial
	// failed, its health checks fail, etcd's own state keeps it out) or
	// "drained" (an operator drained it: see Drained).
	State string `json:"state"`
	// Health is what the gateway last saw of the endpoint: "healthy" or
	// "unhealthy" from its health checks (CheckError says why); without
	// checks "unknown" (never dialled yet), "reachable" (the last dial or
	// probe succeeded) or "unreachable" (the last dial failed).
	Health     string `json:"health"`
	CheckError string `json:"check_error,omitempty"`
	// Addresses are the IP addresses dials use, for an endpoint given by
	// host name.
	Addresses        []string `json:"addresses,omitempty"`
	OpenConnections  int64    `json:"open_connections"`
	TotalConnections uint64   `json:"total_connections"`
	DialErrors       uint64   `json:"dial_errors"`
	// Share is the endpoint's part of its listener's connections to
	// endpoints, 0 to 1: how even the clients are spread.
	Share float64 `json:"share"`
	// Drained is set while an operator's drain keeps the endpoint out of
	// rotation, until undrain or until its address leaves the file.
	Drained bool `json:"drained"`
	// Moves counts the connections closed while quiet so that their
	// clients reconnect to another member, by reason.
	Moves MovesStatus `json:"moves"`
	// BytesToUpstream and BytesToClient count the bytes forwarded through
	// the endpoint's connections as they move, by open connections too.
	BytesToUpstream uint64 `json:"bytes_to_upstream"`
	BytesToClient   uint64 `json:"bytes_to_client"`
	Priority        uint16 `json:"priority,omitempty"`
	Weight          uint16 `json:"weight,omitempty"`
	// Reason says why the endpoint takes no new connections (a failed
	// dial, a failing health check, no address from DNS), or why it may
	// soon not (DNS failing); absent when all is well. Since is when it
	// entered its current state, or joined the pool.
	Reason string     `json:"reason,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
	// Learner says the member is a learner, which refuses the clients'
	// requests; CatchingUp that it came back behind the cluster, by Lag
	// raft entries at the last measure.
	Learner    bool   `json:"learner,omitempty"`
	CatchingUp bool   `json:"catching_up,omitempty"`
	Lag        uint64 `json:"lag,omitempty"`
	// Alarms are the etcd alarms the member reports.
	Alarms []string `json:"alarms,omitempty"`
	// LeaderlessSince is when its checks first found it without a leader;
	// absent while it has one.
	LeaderlessSince *time.Time `json:"leaderless_since,omitempty"`
	// SlowStart is its slow start, while one runs.
	SlowStart *SlowStartStatus `json:"slow_start,omitempty"`
	// SuspicionChecks counts the checks run at once because a client's
	// bytes waited health-check.suspect-after for an answer; Frozen those
	// checks (or checks of the interval) that found it frozen and marked
	// it down.
	SuspicionChecks uint64 `json:"suspicion_checks,omitempty"`
	Frozen          uint64 `json:"frozen,omitempty"`
	// learnerWhy is what said it is a learner, localAlarm that it
	// reports an alarm the other members don't, and awaitingCheck that it
	// joined and its first check has not reported: for its Reason.
	learnerWhy    string
	localAlarm    bool
	awaitingCheck bool
}

// MovesStatus counts an endpoint's moved connections by reason: a drain,
// a rebalance, their age.
type MovesStatus struct {
	Drain     uint64 `json:"drain"`
	Rebalance uint64 `json:"rebalance"`
	MaxAge    uint64 `json:"max_age"`
}

// The values of EndpointStatus.State and EndpointStatus.Health.
const (
	stateActive       = "active"
	stateInactive     = "inactive"
	stateDrained      = "drained"
	healthHealthy     = "healthy"
	healthUnhealthy   = "unhealthy"
	healthReachable   = "reachable"
	healthUnreachable = "unreachable"
	healthUnknown     = "unknown"
)

// Status describes the running gateway.
func (g *Gateway) Status() Status {
	st := g.Stats()
	snap := g.Current()
	listeners := g.group.Status()
	out := Status{
		ConfigFile: snap.File,
		StartedAt:  g.started,
		Reload: ReloadStatus{
			LastResult:    "none",
			LastAppliedAt: st.LastApplied,
			Applied:       st.Applied,
			Rejected:      st.Rejected,
			Unchanged:     st.Unchanged,
		},
		Listeners: make([]ListenerStatus, 0, len(listeners)),
	}
	if st.LastResult != "" {
		at := st.LastAt
		out.Reload.LastAt, out.Reload.LastResult, out.Reload.LastError = &at, st.LastResult, st.LastError
	}
	if err := g.health(listeners); err != nil {
		out.Health = err.Error()
	} else {
		out.Healthy, out.Health = true, "ok"
	}
	for _, ls := range listeners {
		out.Listeners = append(out.Listeners, listenerStatus(ls))
	}
	g.annotate(&out)
	return out
}

func listenerStatus(ls reconcile.Status) ListenerStatus {
	out := ListenerStatus{
		Name:                ls.Config.Name,
		Address:             ls.Addr,
		Source:              Source{Type: "static"},
		MaxConnections:      ls.Limits.MaxConns,
		IdleTimeout:         ls.Limits.IdleTimeout.String(),
		KeepAlive:           ls.Limits.KeepAlive.String(),
		OpenConnections:     ls.OpenConns,
		TotalConnections:    ls.Counters.Accepted,
		RejectedConnections: ls.Counters.Rejected,
		Failovers:           ls.Failovers,
		BytesToUpstream:     ls.Counters.BytesToUpstream,
		BytesToClient:       ls.Counters.BytesToClient,
		Endpoints:           make([]EndpointStatus, 0, len(ls.Endpoints)),
	}
	if ls.Config.DiscoverySRV != "" {
		out.Source = Source{Type: "srv", Domain: ls.Config.DiscoverySRV, ServiceName: ls.Config.DiscoverySRVName}
	}
	out.Waiting = ls.Waiting
	out.DNS = dnsStatus(ls, time.Now())
	for _, ep := range ls.Endpoints {
		es := EndpointStatus{
			Address:          ep.Addr,
			Addresses:        ep.Addresses,
			State:            stateActive,
			Health:           healthReachable,
			OpenConnections:  ep.OpenConns,
			TotalConnections: ep.TotalConns,
			DialErrors:       ep.DialErrors,
			BytesToUpstream:  ep.BytesToUpstream,
			BytesToClient:    ep.BytesToClient,
			Priority:         ep.Priority,
			Weight:           ep.Weight,
		}
		checked := ls.Config.HealthCheck.Type != "" && ls.Config.HealthCheck.Type != config.CheckNone
		switch {
		case !ep.Healthy:
			es.State, es.Health, es.CheckError = stateInactive, healthUnhealthy, ep.CheckError
		case !ep.Active:
			es.State, es.Health = stateInactive, healthUnreachable
		case checked:
			es.Health = healthHealthy
		case ep.TotalConns == 0 && ep.DialErrors == 0:
			es.Health = healthUnknown
		}
		setReadiness(&es, ep.EndpointStats)
		setDrained(&es, ep.EndpointStats)
		out.Endpoints = append(out.Endpoints, es)
	}
	setShares(out.Endpoints)
	out.ClusterAlarms = alarmStatus(ls.ClusterAlarms)
	return out
}

// setDrained records an endpoint's drained mark and moves; the mark
// outranks any other state, since the operator's word holds whatever the
// checks say.
func setDrained(es *EndpointStatus, st upstream.EndpointStats) {
	es.Drained = st.Drained
	es.Moves = MovesStatus{Drain: st.Moves.Drain, Rebalance: st.Moves.Rebalance, MaxAge: st.Moves.MaxAge}
	if st.Drained {
		es.State = stateDrained
	}
}

// setShares sets each endpoint's share of the connections open to them all.
func setShares(eps []EndpointStatus) {
	var sum int64
	for _, ep := range eps {
		sum += ep.OpenConnections
	}
	if sum == 0 {
		return
	}
	for i := range eps {
		eps[i].Share = float64(eps[i].OpenConnections) / float64(sum)
	}
}

// Health returns nil when the gateway is healthy: it is not shutting down,
// the last configuration read was applied (or matched the running one),
// which means every listener the file asks for is bound, and every
// listener accepts connections. Otherwise it says why; /healthz answers
// 503 with it.
func (g *Gateway) Health() error {
	return g.health(g.group.Status())
}

func (g *Gateway) health(listeners []reconcile.Status) error {
	// After a handover the admin address is the new process's, which
	// serves: the few requests this one took before it let the socket go
	// are answered as the address's, not with its own drain.
	if g.stopping.Load() && !g.up.handedOver.Load() {
		return errors.New("shutting down: draining connections")
	}
	if e := g.Stats().LastError; e != "" {
		return fmt.Errorf("the last config reload was rejected; the previous configuration is serving: %s", e)
	}
	serving := make(map[string]bool, len(listeners))
	for _, ls := range listeners {
		serving[ls.Config.Name] = ls.Serving
	}
	for _, lc := range g.Current().Listeners {
		if !serving[lc.Name] {
			return fmt.Errorf("listener %q (%s) is not accepting connections", lc.Name, lc.ListenAddr)
		}
	}
	for _, ls := range listeners {
		if ls.Waiting != "" {
			return fmt.Errorf("listener %q (%s) can't serve new clients: %s", ls.Config.Name, ls.Addr, ls.Waiting)
		}
	}
	return nil
}
