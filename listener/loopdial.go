package listener

import (
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// loopUpstream is the upstream of a client whose upstream the forwarder's
// event loop connects itself (forward.Upstream): the pool's DialPlan,
// which picks and marks endpoints as Pool.Dial does, and the listener's
// bookkeeping once one answers. The loop calls it on its thread, one
// method at a time.
type loopUpstream struct {
	l       *Listener
	pc      *proxyConn
	plan    upstream.DialPlan
	ep      *upstream.Endpoint // of the last Next
	untrack func()             // set by Connected
	start   time.Time
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
	u.untrack = u.ep.Track(u.pc)
	u.pc.mu.Lock()
	u.pc.ep = u.ep.Addr()
	u.pc.mu.Unlock()
	if debugEnabled(u.l.log) {
		u.l.log.WithFields(logrus.Fields{"endpoint": u.ep.Addr(), "client": u.pc.remote()}).Debug("connection opened")
	}
	return forward.Meters{Listener: u.l.counters.bytes, Endpoint: u.ep.Bytes()}
}

// done is the pair's end: the connection is forgotten.
func (u *loopUpstream) done(sent, received int64) {
	if u.untrack != nil {
		u.untrack()
		if debugEnabled(u.l.log) {
			u.l.log.WithFields(logrus.Fields{
				"endpoint": u.ep.Addr(), "client": u.pc.remote(),
				"bytes-sent": sent, "bytes-received": received, "duration": time.Since(u.start).String(),
			}).Debug("connection closed")
		}
	}
	u.l.release(u.pc)
}

// LoopDialled is the number of clients whose upstream the forwarder's
// loops connected, without a goroutine: it tells which path serves the
// listener's clients (the rest are dialled by Pool.Dial in a goroutine).
func (l *Listener) LoopDialled() uint64 { return l.loopDialled.Load() }

// connectInLoop hands pc's client to the forwarder, whose loop connects
// its upstream; it reports false, having done nothing, when the pool
// can't be dialled that way (TLS origination).
func (l *Listener) connectInLoop(pc *proxyConn, client forward.Socket) bool {
	if !forward.LoopsConnect || !l.pool.Nonblocking() {
		return false
	}
	plan, err := l.pool.Plan()
	if err != nil {
		l.noUpstream(pc, err)
		_ = pc.client.Close()
		l.release(pc)
		return true
	}
	u := &loopUpstream{l: l, pc: pc, plan: plan, start: time.Now()}
	o := forward.ConnectOptions{Timeout: plan.Timeout(), KeepAlive: l.limits.Load().KeepAlive}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		_ = pc.client.Close()
		l.release(pc)
		return true
	}
	p, err := l.fwd.Connect(client, u, o, u.done)
	if err != nil {
		l.log.WithError(err).WithField("client", pc.remote()).Warn("can't forward; closing client")
		l.release(pc)
		return true
	}
	pc.fwd = p
	return true
}

// noUpstream counts and logs a client closed because no endpoint could
// be dialled.
func (l *Listener) noUpstream(pc *proxyConn, err error) {
	l.counters.noUpstream.Add(1)
	l.log.WithError(err).WithField("client", pc.remote()).Warn("no upstream for client; closing it")
}
