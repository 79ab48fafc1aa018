package upstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// movable is a tracked connection whose quiet the test sets; closing it
// ends its tracking, as the listener's release does.
type movable struct {
	quiet   atomic.Bool
	h2      atomic.Bool  // speaks plaintext HTTP/2: GoAway works
	goAways atomic.Int32 // GOAWAYs asked for
	closed  atomic.Bool
	mu      sync.Mutex
	untrack func()
}

// trackMovable tracks a movable on ep, as old as age.
func trackMovable(ep *Endpoint, quiet bool, age time.Duration) *movable {
	m := &movable{}
	m.quiet.Store(quiet)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.untrack = ep.Track(m)
	ep.conns.Range(func(k, _ any) bool {
		if t := k.(*tracked); t.c == m {
			t.since = t.since.Add(-age)
		}
		return true
	})
	return m
}

func (m *movable) Close() error {
	if !m.closed.Swap(true) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.untrack()
	}
	return nil
}

func (m *movable) CloseIfQuiet(time.Duration) bool {
	return m.quiet.Load() && m.Close() == nil
}

func (m *movable) GoAway() bool {
	if !m.h2.Load() {
		return false
	}
	m.goAways.Add(1)
	return true
}

func (m *movable) Unanswered() time.Time { return time.Time{} }

// movePool returns a pool of two echo endpoints with s.
func movePool(t *testing.T, s Settings) (*Pool, *Endpoint, *Endpoint) {
	t.Helper()
	a, b := testutil.Echo(t), testutil.Echo(t)
	p := NewPool(Options{Settings: s})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", []resolver.Endpoint{{Addr: a.Addr}, {Addr: b.Addr}})
	return p, endpoint(p, a.Addr), endpoint(p, b.Addr)
}

// TestDrain: a drained endpoint gets no new connection; its quiet
// connections move, one never quiet is closed at ctx's end; Undrain gives
// it connections again.
func TestDrain(t *testing.T) {
	p, a, b := movePool(t, Settings{Policy: config.PolicyRoundRobin})
	quiet := []*movable{trackMovable(a, true, time.Hour), trackMovable(a, true, time.Hour)}
	busy := trackMovable(a, false, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := p.Drain(ctx, a.Addr())
	if err != nil || res != (DrainResult{Moved: 2, Closed: 1}) {
		t.Fatalf("Drain = %+v, %v; want 2 moved, 1 closed", res, err)
	}
	if !quiet[0].closed.Load() || !quiet[1].closed.Load() || !busy.closed.Load() || a.OpenConns() != 0 {
		t.Fatalf("after the drain %d connections are open", a.OpenConns())
	}
	if st := a.Stats(); !st.Drained || st.Up() || a.Up() || st.Moves != (MoveCounts{Drain: 2}) {
		t.Fatalf("drained endpoint's stats: %+v", st)
	}
	for range 8 {
		if got := dialAddr(t, p); got != b.Addr() {
			t.Fatalf("a new client went to the drained %s", got)
		}
	}
	if got := p.Drained(); !slices.Equal(got, []string{a.Addr()}) {
		t.Fatalf("Drained() = %v", got)
	}
	if err := p.Undrain(a.Addr()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a new client on the undrained endpoint", 10*time.Second, func() bool { return dialAddr(t, p) == a.Addr() })
}

// TestDrainUnknownAndLastResort: an unknown address is ErrUnknownEndpoint;
// a drained endpoint is no last resort when the others are down.
func TestDrainUnknownAndLastResort(t *testing.T) {
	p, a, _ := movePool(t, Settings{})
	if _, err := p.Drain(context.Background(), "127.0.0.1:1"); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("Drain of an unknown address: %v", err)
	}
	if err := p.Undrain("127.0.0.1:1"); !errors.Is(err, ErrUnknownEndpoint) {
		t.Fatalf("Undrain of an unknown address: %v", err)
	}
	refusing := testutil.RefusingAddr(t)
	p.UpdateFrom("config", []resolver.Endpoint{{Addr: a.Addr()}, {Addr: refusing}})
	p.MarkDrained([]string{a.Addr()})
	if conn, ep, err := p.Dial(context.Background()); err == nil {
		conn.Close()
		t.Fatalf("a client went to %s with the only live endpoint drained", ep.Addr())
	}
}

// TestDrainedAcrossUpdates: the mark stays while the address does, and
// goes with it.
func TestDrainedAcrossUpdates(t *testing.T) {
	p, a, b := movePool(t, Settings{})
	p.MarkDrained([]string{a.Addr(), "127.0.0.1:1"})
	both := []resolver.Endpoint{{Addr: a.Addr()}, {Addr: b.Addr()}}
	p.UpdateFrom("config", both)
	if got := p.Drained(); !slices.Equal(got, []string{a.Addr()}) {
		t.Fatalf("after an update keeping it, Drained() = %v", got)
	}
	p.UpdateFrom("config", both[1:])
	p.UpdateFrom("config", both)
	if got := p.Drained(); len(got) != 0 || !endpoint(p, a.Addr()).Up() {
		t.Fatalf("after its removal and return, Drained() = %v", got)
	}
}

// TestRebalanceLeavesBusyConnections: a round moves only quiet
// connections off the busiest endpoint; one never quiet within the
// deadline is left, not cut.
func TestRebalanceLeavesBusyConnections(t *testing.T) {
	p, a, b := movePool(t, Settings{Policy: config.PolicyLeastConnections, Rebalance: true})
	var busy []*movable
	for range 6 {
		busy = append(busy, trackMovable(a, false, time.Hour))
	}
	p.rebalanceDue.Store(true)
	p.moveRound(context.Background())
	if n := a.OpenConns(); n != 6 {
		t.Fatalf("a round closed %d busy connections", 6-n)
	}
	busy[0].quiet.Store(true)
	busy[1].quiet.Store(true)
	busy[2].quiet.Store(true)
	p.moveRound(context.Background()) // the pool's own rounds may move one more
	if st := a.Stats(); st.Moves.Rebalance < 2 || st.Moves.Rebalance > 3 || b.OpenConns() != 0 {
		t.Fatalf("after a round with 3 quiet of 6 (share 3, a round's budget 2): %+v", st.Moves)
	}
	for i, m := range busy[3:] {
		if m.closed.Load() {
			t.Fatalf("busy connection %d closed", i+3)
		}
	}
}

// TestMaxConnectionAge: a connection past the age, with its jitter, is
// moved when quiet; a younger one stays.
func TestMaxConnectionAge(t *testing.T) {
	p, a, _ := movePool(t, Settings{MaxConnectionAge: time.Minute})
	old := trackMovable(a, true, 2*time.Minute)
	young := trackMovable(a, true, 30*time.Second)
	oldBusy := trackMovable(a, false, 2*time.Minute)
	p.moveRound(context.Background())
	if !old.closed.Load() || young.closed.Load() || oldBusy.closed.Load() {
		t.Fatalf("closed: old %v, young %v, old and busy %v", old.closed.Load(), young.closed.Load(), oldBusy.closed.Load())
	}
	if m := a.Stats().Moves; m != (MoveCounts{MaxAge: 1}) {
		t.Fatalf("moves %+v", m)
	}
}

// TestStickyMoveChanceSpreadsAFleet simulates 12 gateways with
// sticky-random in front of 3 members through rolling restarts: a
// gateway on a stopped member picks another at random, and each moves to
// the member that returns with stickyMoveChance. The members end even in
// expectation, and rarely with none.
func TestStickyMoveChanceSpreadsAFleet(t *testing.T) {
	const gateways, fleets = 12, 4000
	eps := []*Endpoint{newEndpoint(resolver.Endpoint{Addr: "a:1"}), newEndpoint(resolver.Endpoint{Addr: "b:1"}), newEndpoint(resolver.Endpoint{Addr: "c:1"})}
	rng := rand.New(rand.NewPCG(1, 2))
	var sum [3]int
	empty := 0
	for range fleets {
		counts := rollFleet(rng, eps, gateways, nil)
		for i, n := range counts {
			sum[i] += n
		}
		if slices.Contains(counts[:], 0) {
			empty++
		}
	}
	for i, s := range sum {
		if mean := float64(s) / fleets; mean < 3.8 || mean > 4.2 {
			t.Errorf("member %d: mean %.2f gateways, want 4", i, mean)
		}
	}
	// The last member back is left without a gateway with probability
	// (2/3)^12, under 1 %; an earlier one when all its gateways follow
	// a later return.
	if rate := float64(empty) / fleets; rate > 0.03 {
		t.Errorf("%.1f %% of fleets left a member with no gateway", 100*rate)
	}
}

// rollFleet returns how many of n gateways sit on each member after a
// rolling restart of eps, the gateways spread at random before it; fill,
// when not nil, follows each member's return and the fleet's tosses.
func rollFleet(rng *rand.Rand, eps []*Endpoint, n int, fill func(*rand.Rand, []*Endpoint, []int)) [3]int {
	on := make([]int, n)
	for g := range on {
		on[g] = rng.IntN(3)
	}
	for stopped := range 3 {
		for g := range on {
			if on[g] == stopped { // picks among the two that are up
				on[g] = (stopped + 1 + rng.IntN(2)) % 3
			}
		}
		for g := range on {
			if rng.Float64() < stickyMoveChance(eps[stopped], eps) {
				on[g] = stopped
			}
		}
		if fill != nil {
			fill(rng, eps, on)
		}
	}
	var counts [3]int
	for _, m := range on {
		counts[m]++
	}
	return counts
}

// TestMoveSendsGoAwayAndWaits: a connection that speaks HTTP/2 is moved
// by one GOAWAY, busy or not, and left open for its client to close.
func TestMoveSendsGoAwayAndWaits(t *testing.T) {
	p, a, _ := movePool(t, Settings{Policy: config.PolicyRoundRobin})
	m := trackMovable(a, false, time.Hour)
	m.h2.Store(true)
	done := make(chan DrainResult, 1)
	go func() {
		res, _ := p.Drain(context.Background(), a.Addr())
		done <- res
	}()
	testutil.WaitFor(t, "a GOAWAY", 5*time.Second, func() bool { return m.goAways.Load() == 1 })
	if m.closed.Load() {
		t.Fatal("the move closed the connection it sent a GOAWAY")
	}
	_ = m.Close() // its client, done with its requests
	select {
	case res := <-done:
		if res != (DrainResult{Moved: 1}) || m.goAways.Load() != 1 {
			t.Fatalf("Drain = %+v after %d GOAWAYs; want 1 moved by one", res, m.goAways.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the drain did not end once the client closed")
	}
}

// TestLingeringClosedWhenQuiet: a connection still open past the grace
// of its GOAWAY (its long streams) is closed, and only when quiet.
func TestLingeringClosedWhenQuiet(t *testing.T) {
	_, a, _ := movePool(t, Settings{Policy: config.PolicyRoundRobin})
	m := trackMovable(a, false, time.Hour)
	a.conns.Range(func(k, _ any) bool {
		k.(*tracked).away.Store(time.Now().Add(-goAwayGrace).UnixNano())
		return true
	})
	a.closeLingering(time.Now())
	if m.closed.Load() {
		t.Fatal("a busy lingering connection was closed")
	}
	m.quiet.Store(true)
	a.closeLingering(time.Now())
	if !m.closed.Load() {
		t.Fatal("a quiet lingering connection was left open")
	}
}
