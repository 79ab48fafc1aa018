package reconcile

import "github.com/etcd-gateway/etcd-gateway/resolver"

// Test hooks: what the tests may see of the running sources.

// stopped reports whether the refresh was stopped.
func (r *srvRefresh) stopped() bool { return r.ctx.Err() != nil }

// LookupCounters returns the DNS lookup counters of the listener named
// name; nil when there is no such listener. They last as long as the
// listener, across reloads.
func (g *Group) LookupCounters(name string) *resolver.LookupCounters {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m, ok := g.listeners[name]; ok {
		return m.dns
	}
	return nil
}
