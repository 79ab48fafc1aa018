package upstream

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// drainConn is a tracked connection whose quiet the test sets, and whose
// Close ends its tracking, as a proxied connection's end does.
type drainConn struct {
	quiet   atomic.Bool
	once    sync.Once
	untrack func()
	closed  atomic.Bool
}

func (c *drainConn) Close() error {
	c.closed.Store(true)
	c.once.Do(c.untrack)
	return nil
}

func (c *drainConn) Quiet(time.Time, time.Duration) bool { return c.quiet.Load() }
func (c *drainConn) Unanswered() time.Time               { return time.Time{} }

func trackDrainConn(ep *Endpoint, quiet bool) *drainConn {
	c := &drainConn{}
	c.quiet.Store(quiet)
	c.untrack = ep.Track(c)
	return c
}

// TestDrainMovesQuietAndClosesTheRestAtTheEnd: a drained endpoint is out of
// the picks at once; its quiet connection is moved, the busy one closed
// when the context ends, and the marks read back until undrained.
func TestDrainMovesQuietAndClosesTheRestAtTheEnd(t *testing.T) {
	p := newTestPool(t, Settings{}, "127.0.0.1:1", "127.0.0.1:2")
	ep := endpoint(p, "127.0.0.1:1")
	quiet, busy := trackDrainConn(ep, true), trackDrainConn(ep, false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := p.Drain(ctx, ep.Addr())
	if err != nil || res != (DrainResult{Moved: 1, Closed: 1}) {
		t.Fatalf("Drain: %+v, %v; want 1 moved, 1 closed", res, err)
	}
	if !quiet.closed.Load() || !busy.closed.Load() || ep.OpenConns() != 0 {
		t.Fatalf("after Drain: quiet closed %v, busy closed %v, open %d", quiet.closed.Load(), busy.closed.Load(), ep.OpenConns())
	}
	st := ep.Stats()
	if !st.Drained || st.Up() || ep.Up() || st.Moves.Drain != 1 {
		t.Fatalf("stats after Drain: %+v", st)
	}
	for range 10 {
		if got := p.pick(p.Endpoints(), nil, levelAny); got != endpoint(p, "127.0.0.1:2") {
			t.Fatalf("picked %v, want the endpoint not drained", got.Addr())
		}
	}
	if d := p.Drained(); !slices.Equal(d, []string{"127.0.0.1:1"}) {
		t.Fatalf("Drained: %v", d)
	}
	if err := p.Undrain(ep.Addr()); err != nil || ep.Stats().Drained || len(p.Drained()) != 0 {
		t.Fatalf("Undrain: %v, drained %v", err, p.Drained())
	}
}

func TestDrainUnknownAndMarkDrained(t *testing.T) {
	p := newTestPool(t, Settings{}, "127.0.0.1:1", "127.0.0.1:2")
	if _, err := p.Drain(context.Background(), "127.0.0.1:3"); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("Drain of an unknown address: %v", err)
	}
	if err := p.Undrain("127.0.0.1:3"); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("Undrain of an unknown address: %v", err)
	}
	p.MarkDrained([]string{"127.0.0.1:2", "127.0.0.1:3"})
	if d := p.Drained(); !slices.Equal(d, []string{"127.0.0.1:2"}) {
		t.Fatalf("Drained after MarkDrained: %v", d)
	}
	if res, err := p.Drain(context.Background(), "127.0.0.1:1"); err != nil || res != (DrainResult{}) {
		t.Fatalf("Drain of an endpoint without connections: %+v, %v", res, err)
	}
}
