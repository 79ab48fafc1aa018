package upstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// MoveReason is why the gateway closed a quiet connection so that its
// client reconnects, through the gateway, to another member.
type MoveReason string

// The reasons of a move.
const (
	MoveRebalance MoveReason = "rebalance"
	MoveMaxAge    MoveReason = "max-age"
	MoveDrain     MoveReason = "drain"
)

// MoveCounts counts an endpoint's moved connections by reason.
type MoveCounts struct{ Rebalance, MaxAge, Drain uint64 }

// moveCounters are an endpoint's live MoveCounts.
type moveCounters struct{ rebalance, maxAge, drain atomic.Uint64 }

func (m *moveCounters) load() MoveCounts {
	return MoveCounts{Rebalance: m.rebalance.Load(), MaxAge: m.maxAge.Load(), Drain: m.drain.Load()}
}

// ErrUnknownEndpoint is the error of a drain call for an address the pool
// does not have.
var ErrUnknownEndpoint = errors.New("no such endpoint")

// DrainResult is what a Drain did: Moved connections were closed while
// quiet, Closed ones were still open when its context ended.
type DrainResult struct{ Moved, Closed int }

const (
	// drainPoll is how often a drain looks for quiet connections.
	drainPoll = 50 * time.Millisecond
	// quietWindow is how long a connection must have moved nothing, its
	// member having spoken last, to be closed without losing a request.
	quietWindow = 250 * time.Millisecond
	// closedWait bounds the wait for closed connections to be untracked.
	closedWait = 5 * time.Second
)

// Drain marks the endpoint at addr drained, so that it gets no new
// connection, and closes its open connections as each falls quiet; those
// still open when ctx ends are closed then. It returns once the endpoint
// holds no connection.
func (p *Pool) Drain(ctx context.Context, addr string) (DrainResult, error) {
	ep := p.endpointAt(addr)
	if ep == nil {
		return DrainResult{}, fmt.Errorf("%w: %s", ErrUnknownEndpoint, addr)
	}
	ep.drained.Store(true)
	seen := map[*tracked]bool{}
	var res DrainResult
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for ep.load() > 0 {
		res.Moved += ep.closeQuiet(seen, time.Now())
		select {
		case <-ctx.Done():
			res.Closed = ep.closeUnseen(seen)
			return res, ep.waitClosed()
		case <-t.C:
		}
	}
	return res, nil
}

// closeQuiet closes the connections not closed yet that are quiet at now,
// and returns how many.
func (ep *Endpoint) closeQuiet(seen map[*tracked]bool, now time.Time) int {
	n := 0
	ep.conns.Range(func(k, _ any) bool {
		t := k.(*tracked)
		if !seen[t] && t.c.Quiet(now, quietWindow) {
			seen[t] = true
			_ = t.c.Close()
			ep.moves.drain.Add(1)
			n++
		}
		return true
	})
	return n
}

// closeUnseen closes the connections not closed yet, and returns how many.
func (ep *Endpoint) closeUnseen(seen map[*tracked]bool) int {
	n := 0
	ep.conns.Range(func(k, _ any) bool {
		if t := k.(*tracked); !seen[t] {
			seen[t] = true
			_ = t.c.Close()
			n++
		}
		return true
	})
	return n
}

// waitClosed waits for the connections just closed to end, which their
// forwarding notices at its next turn.
func (ep *Endpoint) waitClosed() error {
	deadline := time.Now().Add(closedWait)
	for ep.load() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("endpoint %s: %d connections still open after they were closed", ep.addr, ep.load())
		}
		time.Sleep(drainPoll)
	}
	return nil
}

// Undrain lets the endpoint at addr take new connections again.
func (p *Pool) Undrain(addr string) error {
	ep := p.endpointAt(addr)
	if ep == nil {
		return fmt.Errorf("%w: %s", ErrUnknownEndpoint, addr)
	}
	ep.drained.Store(false)
	return nil
}

// Drained returns the addresses of the drained endpoints, sorted.
func (p *Pool) Drained() []string {
	var out []string
	for _, ep := range p.Endpoints() {
		if ep.drained.Load() {
			out = append(out, ep.addr)
		}
	}
	slices.Sort(out)
	return out
}

// MarkDrained marks the endpoints at addrs drained without waiting for
// their connections: a new process that takes over, or a listener made
// anew, keeps the operator's marks. Addresses the pool lacks are ignored.
func (p *Pool) MarkDrained(addrs []string) {
	for _, addr := range addrs {
		if ep := p.endpointAt(addr); ep != nil {
			ep.drained.Store(true)
		}
	}
}

// endpointAt returns the endpoint at addr, or nil.
func (p *Pool) endpointAt(addr string) *Endpoint {
	for _, ep := range p.Endpoints() {
		if ep.addr == addr {
			return ep
		}
	}
	return nil
}
