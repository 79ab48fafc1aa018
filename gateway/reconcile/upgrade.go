package reconcile

import (
	"context"
	"fmt"
	"net"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/upgrade"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// Inherit makes the next Apply take its listeners' sockets from in (those
// passed by the process this one takes over from) before binding any;
// nil stops it. Call it before the first Apply.
func (g *Group) Inherit(in *upgrade.Inherited) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	g.inherited = in
}

// listen returns the socket of lc's listen address: a passed one (paused
// until the handover ends) or a new one (newSocket), as a Gate that a later
// handover can pause and pass on.
func (g *Group) listen(ctx context.Context, lc config.Listener) (net.Listener, error) {
	return g.inherited.TakeOrBind(upgrade.KindListener, lc.Name, lc.ListenAddr, func() (net.Listener, error) {
		return g.newSocket(ctx, lc)
	})
}

// Sockets returns the listening sockets of the running listeners, each
// with a new descriptor the caller closes, and their gates, to hand them to
// a new process.
func (g *Group) Sockets() ([]upgrade.Socket, []*listener.Gate, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var socks []upgrade.Socket
	var gates []*listener.Gate
	for name, m := range g.listeners {
		gate := m.ln.Gate()
		if gate == nil {
			continue
		}
		f, err := gate.File()
		if err != nil {
			for _, sk := range socks {
				_ = sk.File.Close()
			}
			return nil, nil, fmt.Errorf("listener %s: %w", name, err)
		}
		socks = append(socks, upgrade.Socket{Kind: upgrade.KindListener, Name: name, ConfigAddr: m.cfg.ListenAddr, Addr: gate.Addr().String(), Drained: m.pool.Drained(), File: f})
		gates = append(gates, gate)
	}
	return socks, gates, nil
}
