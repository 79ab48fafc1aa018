package listener

import (
	"net/netip"
	"time"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// loopUpstream is the upstream of a client whose upstream the forwarder's
// event loop connects itself (forward.Upstream): the pool's DialPlan,
// which picks and marks endpoints as Pool.Dial does, and the listener's
// bookkeeping once one answers. The loop calls it on its thread, one
// method at a time.
type loopUpstream struct {
	l    *Listener
	pc   *proxyConn
	plan upstream.DialPlan
	ep   *upstream.Endpoint // of the last Next
}

// Next returns the address of the plan's next endpoint; when none is
// left, the client goes without one, counted and logged.
func (u *loopUpstream) Next() (netip.AddrPort, bool) {
	ep, addr, ok := u.plan.NextAddr()
	if !ok {
		u.l.noUpstream(u.pc, u.plan.Err())
		return addr, false
	}
	u.ep = ep
	return addr, true
}

// Failed tells the plan that the last endpoint failed.
func (u *loopUpstream) Failed(err error) { u.plan.Failed(err) }

// Connected tells the plan that the last endpoint answered, and tracks
// the connection as the endpoint's.
func (u *loopUpstream) Connected() forward.Meters {
	u.plan.Connected()
	u.l.loopDialled.Add(1)
	return u.l.connected(u.pc, u.ep.Addr(), u.ep)
}

// loopClient is how a loop connects the upstream of pc, a client just
// tracked, with keepalive period keepAlive: through the pool's DialPlan.
// False when the pool has no plan (no endpoint): pc was counted, logged
// and released, and the caller closes its client.
func (l *Listener) loopClient(pc *proxyConn, keepAlive time.Duration) (forward.Client, bool) {
	plan, err := l.pool.Plan()
	if err != nil {
		l.noUpstream(pc, err)
		l.release(pc, 0, 0)
		return forward.Client{}, false
	}
	return forward.Client{
		Upstream: &loopUpstream{l: l, pc: pc, plan: plan},
		Options:  forward.ConnectOptions{Timeout: plan.Timeout(), KeepAlive: keepAlive},
		Done:     func(sent, received int64) { l.release(pc, sent, received) },
		Started:  pc.started,
	}, true
}

// LoopDialled is the number of clients whose upstream the forwarder's
// loops connected, without a goroutine: it tells which path serves the
// listener's clients (the rest are dialled by Pool.Dial in a goroutine).
func (l *Listener) LoopDialled() uint64 { return l.loopDialled.Load() }

// connectInLoop hands pc, a client Go's Accept took, to the forwarder,
// whose loop connects its upstream (loopClient) and forwards it.
func (l *Listener) connectInLoop(pc *proxyConn, client forward.Socket) {
	c, ok := l.loopClient(pc, l.limits.Load().KeepAlive)
	if !ok {
		_ = pc.client.Close()
		return
	}
	p, err := l.fwd.Connect(client, c.Upstream, c.Options, c.Done)
	if err != nil {
		if !pc.isClosed() { // else Close came first, and closed the client
			l.log.WithError(err).WithField("client", pc.remote()).Warn("can't forward; closing client")
		}
		l.release(pc, 0, 0)
		return
	}
	c.Started(p)
}

// noUpstream counts and logs a client closed because no endpoint could
// be dialled.
func (l *Listener) noUpstream(pc *proxyConn, err error) {
	l.counters.noUpstream.Add(1)
	l.log.WithError(err).WithField("client", pc.remote()).Warn("no upstream for client; closing it")
}
