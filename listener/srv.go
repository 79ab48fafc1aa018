package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// This file holds what Group does for listeners with discovery-srv: the
// first resolution before anything changes, the refresh loop per listener,
// and the dial function that resolves targets through dns-server.

// source is what Apply prepared for one listener's endpoints.
type source struct {
	dnsServer string
	// srv and first are set when the listener's SRV discovery is new or
	// changed: first is its resolution, done before anything changed.
	srv   resolver.SRV
	first *resolver.Result
}

// srvRefresh is the running SRV refresh of one listener.
type srvRefresh struct {
	srv    resolver.SRV
	every  time.Duration
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
}

// stop ends the refresh; once it returns, the refresh no longer updates
// the pool.
func (r *srvRefresh) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
}

// dialSwitch is a pool's dial function, which a reload may replace (for
// dns-server, or a listener switching between static endpoints and SRV).
type dialSwitch struct {
	fn atomic.Pointer[upstream.DialFunc]
}

func (d *dialSwitch) set(fn upstream.DialFunc) { d.fn.Store(&fn) }

func (d *dialSwitch) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if fn := d.fn.Load(); fn != nil {
		return (*fn)(ctx, network, addr)
	}
	nd := net.Dialer{KeepAlive: -1} // handle sets the listener's keepalive
	return nd.DialContext(ctx, network, addr)
}

// srvChanged reports whether lc has SRV discovery that m (nil for a new
// listener) does not run as it is now configured.
func srvChanged(m *member, lc config.Listener, dnsServer string) bool {
	if lc.DiscoverySRV == "" {
		return false
	}
	return m == nil || m.srv == nil || m.srv.srv != resolver.FromConfig(dnsServer, lc) || m.srv.every != lc.DNSRefresh
}

// prepareSources returns the source of every listener of s, resolving at
// the same time every SRV discovery that is new or changed. When one finds
// nothing usable, the error names each such listener, the key and the SRV
// names queried.
func (g *Group) prepareSources(ctx context.Context, s *config.Snapshot) (map[string]source, error) {
	srcs := make([]source, len(s.Listeners))
	errs := make([]error, len(s.Listeners))
	var wg sync.WaitGroup
	for i, lc := range s.Listeners {
		srcs[i].dnsServer = s.DNSServer
		if !srvChanged(g.members[lc.Name], lc, s.DNSServer) {
			continue
		}
		srcs[i].srv = resolver.FromConfig(s.DNSServer, lc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := srcs[i].srv.Resolve(ctx)
			if err != nil {
				errs[i] = fmt.Errorf("%s: listener %q: key \"discovery-srv\": %w", fileName(s.File), lc.Name, err)
				return
			}
			srcs[i].first = &res
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make(map[string]source, len(s.Listeners))
	for i, lc := range s.Listeners {
		out[lc.Name] = srcs[i]
	}
	return out, nil
}

// setSource points m's pool at lc's endpoints and returns the addresses
// added and removed. Static endpoints replace the set and stop any SRV
// refresh; a new or changed SRV discovery replaces the set with its first
// resolution and (re)starts the refresh; an unchanged one is left running.
func (g *Group) setSource(m *member, lc config.Listener, src source) (added, removed []string) {
	if lc.DiscoverySRV == "" {
		if m.srv != nil {
			m.srv.stop()
			m.srv = nil
		}
		m.dial.set(resolver.Dialer(""))
		return m.pool.Update(resolver.Static(lc.Endpoints))
	}
	if src.first == nil {
		return nil, nil
	}
	if m.srv != nil {
		m.srv.stop()
	}
	log := g.log.WithField("listener", lc.Name)
	m.dial.set(resolver.Dialer(src.dnsServer))
	added, removed = m.pool.Update(src.first.Endpoints)
	m.dns.Observe(nil) // the first resolution, made by prepareSources
	m.srv = startRefresh(m.pool, src.srv, lc.DNSRefresh, *src.first, log, m.dns)
	return added, removed
}

// startRefresh runs the SRV refresh of a pool until it is stopped.
func startRefresh(pool *upstream.Pool, srv resolver.SRV, every time.Duration, first resolver.Result, log logrus.FieldLogger, counters *resolver.LookupCounters) *srvRefresh {
	ctx, cancel := context.WithCancel(context.Background())
	r := &srvRefresh{srv: srv, every: every, cancel: cancel}
	for _, d := range first.Dropped {
		log.WithFields(logrus.Fields{"endpoint": d.Addr, "reason": d.Reason}).Warn("discovered endpoint dropped")
	}
	refresher := resolver.Refresher{
		SRV:      srv,
		Interval: every,
		Log:      log,
		Counters: counters,
		Update: func(eps []resolver.Endpoint) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if !r.stopped {
				pool.Update(eps)
			}
		},
	}
	go refresher.Run(ctx, first)
	return r
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
