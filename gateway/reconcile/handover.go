package reconcile

import (
	"context"
	"net"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/handover"
)

// ClaimFrom makes the next Apply claim its listeners' sockets from in
// (those received in the handover this process starts with) before
// binding any; nil stops it. Call it before the first Apply.
func (g *Group) ClaimFrom(in *handover.Received) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	g.received = in
}

// listen returns the socket of lc's listen address: a received one
// (paused until the handover ends) or a new one (newSocket), as a Gate
// that a later handover can pause and give on.
func (g *Group) listen(ctx context.Context, lc config.Listener) (net.Listener, error) {
	return g.received.ClaimOrBind(handover.KindListener, lc.Name, lc.ListenAddr, func() (net.Listener, error) {
		return g.newSocket(ctx, lc)
	})
}

// Gates returns the listening sockets of the running listeners, to give
// them to a new process.
func (g *Group) Gates() []handover.Gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	var gates []handover.Gate
	for name, m := range g.listeners {
		if gate := m.ln.Gate(); gate != nil {
			gates = append(gates, handover.Gate{Kind: handover.KindListener, Name: name, ConfigAddr: m.cfg.ListenAddr, Drained: m.pool.Drained(), Gate: gate})
		}
	}
	return gates
}
