package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// slowStartPool returns a pool of policy over n loopback servers that
// read until EOF, with slow-start window, and its endpoints.
func slowStartPool(t *testing.T, policy config.Policy, window time.Duration, n int) (*Pool, []*Endpoint) {
	t.Helper()
	var addrs []string
	for range n {
		addrs = append(addrs, testutil.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }).Addr)
	}
	p := NewPool(Options{Settings: Settings{Policy: policy, SlowStart: window, RetryDelay: time.Hour}})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static(addrs))
	eps := p.Endpoints()
	return p, eps
}

// comeBack makes ep return as a member does after being down: a failed
// dial marks it down, a successful one back up.
func comeBack(p *Pool, ep *Endpoint) {
	p.markDown(ep, errors.New("refused, for the test"))
	p.markUp(ep, "dial succeeded, for the test")
}

// atShare puts ep at share of its slow start, for a window of an hour.
func atShare(ep *Endpoint, share float64) {
	start := time.Now().Add(-time.Duration(share * float64(time.Hour)))
	ep.slowStart.Store(&slowStartWindow{start: start, end: start.Add(time.Hour)})
}

// dials dials p n times and counts the connections per endpoint; with
// hold, the connections stay open (least-connections counts them).
func dials(t *testing.T, p *Pool, n int, hold bool) map[*Endpoint]int {
	t.Helper()
	got := map[*Endpoint]int{}
	for range n {
		conn, ep, err := p.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got[ep]++
		if !hold {
			_ = conn.Close()
			continue
		}
		untrack := ep.Track(closerConn{conn})
		t.Cleanup(func() { untrack(); _ = conn.Close() })
	}
	return got
}

// TestSlowStartRoundRobin is issue 25, item 5: a member that comes back
// gets no share at first, half its share half-way, all of it after.
func TestSlowStartRoundRobin(t *testing.T) {
	p, eps := slowStartPool(t, config.PolicyRoundRobin, time.Hour, 3)
	comeBack(p, eps[2])
	if st := eps[2].Stats(); st.SlowStartShare > 0.01 || st.SlowStartEnds.IsZero() {
		t.Fatalf("just back: share %v, ends %v", st.SlowStartShare, st.SlowStartEnds)
	}
	if got := dials(t, p, 300, false)[eps[2]]; got > 3 {
		t.Fatalf("just back, it got %d of 300 connections", got)
	}
	atShare(eps[2], 0.5)
	// Round-robin gives each of three 200 of 600; at half its share, 100.
	if got := dials(t, p, 600, false)[eps[2]]; got < 50 || got > 160 {
		t.Fatalf("half-way, it got %d of 600 connections, want about 100", got)
	}
	eps[2].slowStart.Store(&slowStartWindow{start: time.Now().Add(-2 * time.Hour), end: time.Now().Add(-time.Hour)})
	if got := dials(t, p, 300, false)[eps[2]]; got != 100 {
		t.Fatalf("after its slow start, it got %d of 300 connections, want 100", got)
	}
	if eps[2].slowStart.Load() != nil || eps[2].Stats().SlowStartShare != 1 {
		t.Fatal("the slow start that is over was not ended")
	}
}

// TestSlowStartLeastConnections: least-connections would give a member
// that comes back with no connection every new one until it has as many
// as the others; in its slow start it gets its share of that.
func TestSlowStartLeastConnections(t *testing.T) {
	p, eps := slowStartPool(t, config.PolicyLeastConnections, time.Hour, 3)
	for _, ep := range eps[:2] {
		for range 50 {
			ep.Track(closerConn{io.NopCloser(nil)})
		}
	}
	comeBack(p, eps[2])
	atShare(eps[2], 0.2)
	if got := dials(t, p, 100, true)[eps[2]]; got < 5 || got > 35 {
		t.Fatalf("at a fifth of its share, it got %d of 100 connections, want about 20 (without slow start: all)", got)
	}
}

// TestSlowStartStickyRandom: sticky-random doesn't move to a member in
// its slow start, since it would then send it every new client; it moves
// to another member that is up.
func TestSlowStartStickyRandom(t *testing.T) {
	for range 20 {
		p, eps := slowStartPool(t, config.PolicyStickyRandom, time.Hour, 3)
		current := dialOnce(t, p)
		others := []*Endpoint{}
		for _, ep := range eps {
			if ep != current {
				others = append(others, ep)
			}
		}
		comeBack(p, others[0])
		p.markDown(current, errors.New("refused, for the test"))
		if got := dialOnce(t, p); got != others[1] {
			t.Fatalf("sticky-random moved to %s, want %s: %s is in its slow start", got.Addr(), others[1].Addr(), others[0].Addr())
		}
	}
}
