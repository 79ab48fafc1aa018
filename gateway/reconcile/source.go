package reconcile

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// source feeds one listener's pool: its endpoints as configured (a static
// list) or discovered (the SRV set in force), less those whose host name
// DNS says is gone. It runs the listener's SRV refresh, if any.
type source struct {
	pool  *upstream.Pool
	hosts func() *resolver.Hosts
	log   logrus.FieldLogger

	mu sync.Mutex
	// raw is the set before the gone names are taken out.
	raw []resolver.Endpoint
	// published is what the pool was last given.
	published []resolver.Endpoint
	// srv is the running SRV refresh; nil for static endpoints.
	srv *srvRefresh
	// waiting is set while the SRV discovery has never reached DNS.
	waiting string
}

// srvRefresh is the running SRV refresh of one listener.
type srvRefresh struct {
	srv    resolver.SRV // as configured, without Hosts
	every  time.Duration
	ctx    context.Context
	cancel context.CancelFunc
}

// set replaces the raw endpoint set and publishes it; it returns the
// addresses the pool gained and lost.
func (s *source) set(raw []resolver.Endpoint) (added, removed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked("config", raw)
}

// setLocked is set with the cause of the change ("config" or "dns"). The
// caller holds mu.
func (s *source) setLocked(cause string, raw []resolver.Endpoint) (added, removed []string) {
	s.raw = raw
	s.hosts().Track(hostNames(raw)...)
	return s.publishLocked(cause)
}

// discovered takes a set from the SRV refresh r, unless r was stopped.
func (s *source) discovered(r *srvRefresh, eps []resolver.Endpoint) {
	// A new target is resolved before the pool has it: the forwarder's
	// loops connect at cached addresses and don't wait for a first lookup.
	s.hosts().Resolve(r.ctx, hostNames(eps))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != r {
		return
	}
	s.setLocked("dns", eps)
	s.waiting = ""
	s.pool.SetWaiting("")
}

// republish publishes the raw set again, after a host name came or went.
func (s *source) republish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked("dns")
}

// publishLocked gives the pool the raw set less the endpoints whose name
// DNS says is gone. The caller holds mu.
func (s *source) publishLocked(cause string) (added, removed []string) {
	hosts := s.hosts()
	next := slices.DeleteFunc(slices.Clone(s.raw), func(ep resolver.Endpoint) bool {
		st, ok := hosts.State(hostOf(ep.Addr))
		return ok && st.Gone
	})
	if s.published != nil && slices.Equal(next, s.published) {
		return nil, nil
	}
	s.published = next
	return s.pool.UpdateFrom(cause, next)
}

// uses reports whether name is one of the source's host names.
func (s *source) uses(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.raw, func(ep resolver.Endpoint) bool { return hostOf(ep.Addr) == name })
}

// names returns the host names of the raw set and of the pool (members
// found by member sync included).
func (s *source) names() []string {
	s.mu.Lock()
	out := hostNames(s.raw)
	s.mu.Unlock()
	for _, ep := range s.pool.Endpoints() {
		if h := hostOf(ep.Addr()); resolver.IsName(h) && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// setWaiting records why the SRV discovery has no set yet ("" once it
// has), and tells the pool, whose dials say it.
func (s *source) setWaiting(why string) {
	s.mu.Lock()
	s.waiting = why
	s.mu.Unlock()
	s.pool.SetWaiting(why)
}

// Waiting says why the listener has no endpoint set yet, or "".
func (s *source) Waiting() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// stopSRV ends the SRV refresh, if one runs; once it returns, the refresh
// no longer changes the set.
func (s *source) stopSRV() {
	s.mu.Lock()
	r := s.srv
	s.srv = nil
	s.mu.Unlock()
	if r != nil {
		r.cancel()
	}
}

// startSRV (re)starts the SRV refresh from first, the resolution made by
// Apply (with no endpoints when DNS could not be reached).
func (s *source) startSRV(srv resolver.SRV, every, floor time.Duration, first resolver.Result, counters *resolver.LookupCounters) {
	s.stopSRV()
	ctx, cancel := context.WithCancel(context.Background())
	r := &srvRefresh{srv: srv, every: every, ctx: ctx, cancel: cancel}
	for _, d := range first.Dropped {
		s.log.WithFields(logrus.Fields{"endpoint": d.Addr, "reason": d.Reason}).Warn("discovered endpoint dropped")
	}
	srv.Hosts = s.hosts()
	refresher := resolver.Refresher{
		SRV:         srv,
		Interval:    every,
		MinInterval: floor,
		Log:         s.log,
		Counters:    counters,
		Update:      func(eps []resolver.Endpoint) { s.discovered(r, eps) },
	}
	s.mu.Lock()
	s.srv = r
	s.mu.Unlock()
	go refresher.Run(ctx, first)
}

// running returns the SRV refresh in force, or nil.
func (s *source) running() *srvRefresh {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// srvChanged reports whether lc has SRV discovery that src (nil for a new
// listener) does not run as it is now configured.
func srvChanged(src *source, lc config.Listener, dnsServer string, hostsChanged bool) bool {
	if lc.DiscoverySRV == "" {
		return false
	}
	if src == nil || hostsChanged {
		return true
	}
	r := src.running()
	return r == nil || r.srv != resolver.FromConfig(dnsServer, lc) || r.every != lc.DNSRefresh
}

// hostOf is the host of host:port (addr itself when it has no port).
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return strings.ToLower(host)
}

// hostNames returns the distinct host names (not IP addresses) of eps.
func hostNames(eps []resolver.Endpoint) []string {
	var out []string
	for _, ep := range eps {
		if h := hostOf(ep.Addr); resolver.IsName(h) && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// endpointAddrs lists the addresses of pool's endpoints.
func endpointAddrs(pool *upstream.Pool) []string {
	eps := pool.Endpoints()
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.Addr()
	}
	return out
}
