package upstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrUnknownEndpoint is wrapped by Drain and Undrain for an address the
// pool has no endpoint at.
var ErrUnknownEndpoint = errors.New("no such endpoint")

// DrainResult says what a drain did: Moved connections were sent a
// GOAWAY (plaintext HTTP/2) or closed while quiet, Closed ones were
// closed at ctx's end without either.
type DrainResult struct{ Moved, Closed int }

// Drain marks the endpoint at addr drained (no new connections; Up()
// false; not a last resort of fail-open either) and moves its open
// connections off (mover.go: a GOAWAY, or a close when quiet); those
// still open when ctx ends are closed. It returns once the endpoint holds no connection. The drained
// mark lasts (across reloads: UpdateFrom keeps it for an address that
// stays) until Undrain or until the address is removed from the pool's
// configured/discovered set.
func (p *Pool) Drain(ctx context.Context, addr string) (DrainResult, error) {
	ep, err := p.setDrained(addr, true)
	if err != nil {
		return DrainResult{}, fmt.Errorf("drain: %w", err)
	}
	p.log.WithField("endpoint", addr).Info("endpoint drained: no new connections; its connections move off")
	res, err := p.drainConns(ctx, ep)
	if err != nil {
		return res, fmt.Errorf("drain %s: %w", addr, err)
	}
	return res, nil
}

// Undrain gives the endpoint at addr new connections again.
func (p *Pool) Undrain(addr string) error {
	ep, err := p.setDrained(addr, false)
	if err != nil {
		return fmt.Errorf("undrain: %w", err)
	}
	p.log.WithField("endpoint", addr).Info("endpoint undrained: it takes new connections")
	p.returned(ep) // rebalancing brings clients back, at its slow start's pace
	return nil
}

// Drained lists the addresses of the pool's drained endpoints, sorted.
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

// MarkDrained marks the endpoints at addrs drained without waiting or
// moving (a new process taking over a handover, a listener re-made by a
// reload); unknown addresses are ignored.
func (p *Pool) MarkDrained(addrs []string) {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	for _, ep := range p.Endpoints() {
		if slices.Contains(addrs, ep.addr) {
			ep.drained.Store(true)
		}
	}
}

// setDrained marks the endpoint at addr drained or not, under updateMu,
// so that a removal (which clears the mark) can't come between finding
// the endpoint and marking it.
func (p *Pool) setDrained(addr string, drained bool) (*Endpoint, error) {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	for _, ep := range p.Endpoints() {
		if ep.addr == addr {
			ep.drained.Store(drained)
			return ep, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", addr, ErrUnknownEndpoint)
}

// drainConns moves ep's connections off, each as moveNow can, until it holds
// none; at ctx's end it closes the rest. A drain that Undrain or the
// address's removal ends returns an error.
func (p *Pool) drainConns(ctx context.Context, ep *Endpoint) (DrainResult, error) {
	var res DrainResult
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	for ep.load() > 0 {
		if !ep.drained.Load() {
			return res, fmt.Errorf("undrained or removed with %d connections open", ep.OpenConns())
		}
		s := moveSet{ep: ep, conns: ep.trackedWhere(func(*tracked) bool { return true }), want: -1, reason: MoveDrain}
		now := time.Now()
		res.Moved += s.moveNow(now)
		ep.closeLingering(now)
		select {
		case <-ctx.Done():
			return p.closeDrained(ep, res)
		case <-p.ctx.Done():
			return res, errors.New("pool closed")
		case <-tick.C:
		}
	}
	return res, nil
}

// closeDrained closes the connections of ep, drained, that were never
// quiet, and those that a dial begun before the drain adds, until ep
// holds none.
func (p *Pool) closeDrained(ep *Endpoint, res DrainResult) (DrainResult, error) {
	tick := time.NewTicker(quietPoll)
	defer tick.Stop()
	for ep.load() > 0 {
		ep.conns.Range(func(k, _ any) bool {
			switch t := k.(*tracked); {
			case t.moving.CompareAndSwap(false, true):
				_ = t.c.Close()
				res.Closed++
			case t.away.Load() != 0: // moved by a GOAWAY, counted then
				_ = t.c.Close()
			}
			return true
		})
		select {
		case <-p.ctx.Done():
			return res, errors.New("pool closed")
		case <-tick.C:
		}
	}
	return res, nil
}
