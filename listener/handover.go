package listener

import (
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// ExportedConn is a client connection and its upstream, exported to be
// handed to another process (gateway/handover): their descriptors, the
// state of the forwarding, and the endpoint the upstream is connected to.
type ExportedConn struct {
	Endpoint string
	forward.Exported
}

// Close closes the descriptors: the connections end, unless another
// process holds them too.
func (c ExportedConn) Close() {
	_, _ = unix.Close(c.Client), unix.Close(c.Upstream)
}

// ExportCandidate is a connection the forwarder's event loops forward,
// which may be handed to another process: ExportBatch exports it.
type ExportCandidate struct {
	// Idle is how long the connection has carried no data (TCP_INFO; 0
	// if it can't tell): a caller hands the busiest over last, so that
	// they stall for the last batch only.
	Idle time.Duration
	pair *forward.Pair
	ep   string
}

// ExportCandidates returns the connections of the listener that may move
// (not those served over TLS, which hold state in this process); left
// counts the others. Call it on a listener that no longer accepts (its
// Gate paused).
func (l *Listener) ExportCandidates() (cands []ExportCandidate, left int) {
	var pcs []*proxyConn
	l.conns.Range(func(k, _ any) bool {
		pc := k.(*proxyConn)
		if p, ep, ok := pc.movable(); ok {
			cands, pcs = append(cands, ExportCandidate{pair: p, ep: ep}), append(pcs, pc)
		} else {
			left++
		}
		return true
	})
	for i, pc := range pcs {
		cands[i].Idle, _ = idleFor(pc.idleConn()) // an error: 0, busy
	}
	return cands, left
}

// movable returns the pair that forwards c, which a handover may export,
// and c's endpoint; false when c is closed, not forwarded yet, or copied.
func (c *proxyConn) movable() (*forward.Pair, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fwd == nil || c.closed {
		return nil, "", false
	}
	p, ok := c.fwd.Movable()
	return p, c.ep, ok
}

// ExportBatch exports cands, of any listeners, together
// (forward.ExportBatch); each exported is forgotten by its listener as if
// it had ended. ok[i] is false for cands[i] when it stays: its
// destination didn't take what the gateway holds for it within timeout
// (it drains here, as at shutdown), or it just ended.
func ExportBatch(cands []ExportCandidate, timeout time.Duration) (exported []ExportedConn, ok []bool) {
	pairs := make([]*forward.Pair, len(cands))
	for i, c := range cands {
		pairs[i] = c.pair
	}
	exported, ok = make([]ExportedConn, len(cands)), make([]bool, len(cands))
	for i, r := range forward.ExportBatch(pairs, timeout) {
		exported[i], ok[i] = ExportedConn{Endpoint: cands[i].ep, Exported: r.Exported}, r.Err == nil
	}
	return exported, ok
}

// Adopt forwards a connection exported by another process (or by this
// one, when the new process did not take it) as if this listener had
// accepted it in its loops: no Go object, the descriptors registered
// with a loop as they are (they must be non-blocking, as the export left
// them); tracked for drain and limits, and by its endpoint when the pool has it. A connection to an
// endpoint the pool no longer has follows on-endpoint-removed: kept,
// drained (closed after drain-timeout) or closed. The descriptors are
// the listener's from the call on.
func (l *Listener) Adopt(c ExportedConn) error {
	peer, unixClient, err := forward.Peer(c.Client)
	if err != nil {
		c.Close()
		return fmt.Errorf("listener %s: adopt: %w", l.name, err)
	}
	pc := &proxyConn{peer: peer, unix: unixClient}
	l.track(pc)
	ep := l.endpoint(c.Endpoint)
	m := l.connected(pc, c.Endpoint, ep)
	pc.mu.Lock() // a Close meanwhile waits for the pair
	p, err := l.fwd.AdoptFDs(c.Client, c.Upstream, c.State, m, func(sent, received int64) { l.release(pc, sent, received) })
	if err == nil {
		pc.fwd = p
	}
	pc.mu.Unlock()
	if err != nil {
		l.release(pc, 0, 0)
		return fmt.Errorf("listener %s: %w", l.name, err)
	}
	if ep == nil {
		l.orphan(pc, c.Endpoint)
	}
	return nil
}

// endpoint returns the pool's endpoint at addr, or nil.
func (l *Listener) endpoint(addr string) *upstream.Endpoint {
	for _, ep := range l.pool.Endpoints() {
		if ep.Addr() == addr {
			return ep
		}
	}
	return nil
}

// orphan applies on-endpoint-removed to an adopted connection whose
// endpoint the pool doesn't have.
func (l *Listener) orphan(pc *proxyConn, addr string) {
	s := l.pool.Settings()
	log := l.log.WithFields(logrus.Fields{"endpoint": addr, "on-endpoint-removed": s.OnEndpointRemoved})
	switch s.OnEndpointRemoved {
	case config.RemovedClose:
		log.Info("adopted a connection to an endpoint this configuration no longer has: closing it")
		_ = pc.Close()
	case config.RemovedDrain:
		log.Debug("adopted a connection to an endpoint this configuration no longer has: draining it")
		time.AfterFunc(s.DrainTimeout, func() { _ = pc.Close() })
	default:
		log.Debug("adopted a connection to an endpoint this configuration no longer has: keeping it")
	}
}
