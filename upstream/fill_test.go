package upstream

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// read gives ep two readings of client RPCs, streams open each time and
// calls started in between, the later at at.
func read(ep *Endpoint, streams int64, calls uint64, at time.Time) {
	ep.facts.Store(&memberFacts{
		metrics:  present,
		prevRPCs: clientRPCs{streams: streams, unary: 100, at: at.Add(-time.Second)},
		rpcs:     clientRPCs{streams: streams, unary: 100 + calls, at: at},
	})
}

func TestVacantMember(t *testing.T) {
	start := time.Now()
	a, b, c := newEndpoint(resolver.Endpoint{Addr: "a:1"}), newEndpoint(resolver.Endpoint{Addr: "b:1"}), newEndpoint(resolver.Endpoint{Addr: "c:1"})
	up := []*Endpoint{a, b, c}
	read(a, 6, 0, start.Add(2*time.Second))
	read(b, 0, 40, start.Add(2*time.Second)) // unary calls only: used
	read(c, 0, 0, start.Add(2*time.Second))
	if v := vacantMember(up, a, start, start); v != c {
		t.Fatalf("vacant %v, want c", v)
	}
	if v := vacantMember(up, c, start, start); v != nil {
		t.Fatalf("vacant %v seen from c itself, want none", v)
	}
	if v := vacantMember(up, a, start.Add(2*time.Second), start); v != nil {
		t.Fatalf("vacant %v from a reading older than the look, want none", v)
	}
	c.facts.Store(&memberFacts{metrics: absent})
	if v := vacantMember(up, a, start, start); v != nil {
		t.Fatalf("vacant %v without metrics, want none", v)
	}
	// Weight 0 beside weight 1: meant to be nearly vacant.
	a1, b1, c0 := newEndpoint(resolver.Endpoint{Addr: "a:1", Weight: 1}), newEndpoint(resolver.Endpoint{Addr: "b:1", Weight: 1}), newEndpoint(resolver.Endpoint{Addr: "c:1"})
	read(a1, 6, 0, start.Add(2*time.Second))
	read(b1, 6, 0, start.Add(2*time.Second))
	read(c0, 0, 0, start.Add(2*time.Second))
	if v := vacantMember([]*Endpoint{a1, b1, c0}, a1, start, start); v != nil {
		t.Fatalf("vacant %s, of weight 0 beside weight 1, want none", v.addr)
	}
}

func TestFillChance(t *testing.T) {
	at := time.Now()
	since := at.Add(-time.Minute)
	a, b, c := newEndpoint(resolver.Endpoint{Addr: "a:1"}), newEndpoint(resolver.Endpoint{Addr: "b:1"}), newEndpoint(resolver.Endpoint{Addr: "c:1"})
	up := []*Endpoint{a, b, c}
	for _, tc := range []struct {
		works [3]int64
		cur   *Endpoint
		want  float64
	}{
		{[3]int64{1, 11, 0}, a, 0},         // alone, below the mean
		{[3]int64{1, 11, 0}, b, 21.0 / 33}, // 11 against a mean of 4
		{[3]int64{1, 11, 0}, c, 0},         // vacant itself
		{[3]int64{2, 1, 0}, b, 0},          // at the mean
		{[3]int64{2, 1, 0}, a, 0.5},        // one of its two gateways
		{[3]int64{6, 6, 0}, a, 1.0 / 3},    // two of its six
		{[3]int64{12, 0, 0}, a, 2.0 / 3},   // eight of its twelve
		{[3]int64{4, 4, 4}, a, 0},          // even
	} {
		for i, ep := range up {
			read(ep, tc.works[i], 0, at)
		}
		if got := fillChance(up, tc.cur, since); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("works %v, from %s: chance %.3f, want %.3f", tc.works, tc.cur.addr, got, tc.want)
		}
	}
}

// TestFillVacant: a gateway on a busy member sees a vacant one, draws a
// moment, and may move its pick there only with a reading made after the
// moment that still shows it vacant; it does so within a few moments
// (its chance is one half), and at most fillsPerToss times a toss.
func TestFillVacant(t *testing.T) {
	p, a, b := movePool(t, Settings{})
	st := p.policy.Load().Policy.(*StickyRandom)
	trackMovable(a, true, time.Minute)
	now := time.Now()
	p.fill = fillState{from: now.Add(-time.Minute), until: now.Add(time.Hour)}
	for fills := range fillsPerToss + 1 {
		st.current.Store(a)
		p.stickyMoving.Store(false)
		now = fillOnceAt(t, p, st, a, b, now)
		if got := st.current.Load(); (got == b) != (fills < fillsPerToss) {
			t.Fatalf("fill %d: pick %s", fills+1, got.addr)
		}
	}
}

// fillOnceAt draws moments for p until it fills b from a, or 64 draws,
// and returns the time it got to; a reading older than the moment never
// fills.
func fillOnceAt(t *testing.T, p *Pool, st *StickyRandom, a, b *Endpoint, now time.Time) time.Time {
	t.Helper()
	for range 64 {
		read(a, 5, 0, now)
		read(b, 0, 0, now)
		p.fillVacant(st, []*Endpoint{a, b}, now)
		at := p.fill.at
		if at.IsZero() {
			return now // no more fills
		}
		p.fillVacant(st, []*Endpoint{a, b}, at.Add(time.Millisecond))
		if st.current.Load() != a {
			t.Fatal("filled on a reading older than its moment")
		}
		read(b, 0, 0, at.Add(time.Millisecond))
		now = at.Add(2 * time.Millisecond)
		p.fillVacant(st, []*Endpoint{a, b}, now)
		if st.current.Load() == b {
			return now
		}
	}
	return now
}

// TestFillVacantForgetsAFilledMember: a vacant member that another
// gateway filled before this one's moment is left as it is.
func TestFillVacantForgetsAFilledMember(t *testing.T) {
	p, a, b := movePool(t, Settings{})
	st := p.policy.Load().Policy.(*StickyRandom)
	st.current.Store(a)
	trackMovable(a, true, time.Minute)
	now := time.Now()
	p.fill = fillState{from: now.Add(-time.Minute), until: now.Add(time.Hour)} // past any moment
	read(a, 5, 0, now)
	read(b, 0, 0, now)
	p.fillVacant(st, []*Endpoint{a, b}, now)
	read(b, 1, 0, p.fill.at.Add(time.Millisecond)) // another gateway's client arrived
	p.fillVacant(st, []*Endpoint{a, b}, p.fill.at.Add(2*time.Millisecond))
	if st.current.Load() != a || !p.fill.at.IsZero() {
		t.Fatalf("pick %s, moment %v: want a, and no moment", st.current.Load().addr, p.fill.at)
	}
}

// TestFillLeavesNoMemberVacant simulates fleets through rolling restarts,
// as TestStickyMoveChanceSpreadsAFleet, each gateway then looking for a
// vacant member at its own moment with the pool's rules: no fleet keeps
// one, and the members stay even in expectation. With as many gateways as
// members, the coin alone leaves one vacant most of the time.
func TestFillLeavesNoMemberVacant(t *testing.T) {
	const fleets = 4000
	eps := []*Endpoint{newEndpoint(resolver.Endpoint{Addr: "a:1"}), newEndpoint(resolver.Endpoint{Addr: "b:1"}), newEndpoint(resolver.Endpoint{Addr: "c:1"})}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, gateways := range []int{3, 12} {
		var sum [3]int
		for range fleets {
			counts := rollFleet(rng, eps, gateways, fillFleet)
			if slices.Contains(counts[:], 0) {
				t.Fatalf("%d gateways: a fleet ended with a member vacant: %v", gateways, counts)
			}
			for i, n := range counts {
				sum[i] += n
			}
		}
		for i, s := range sum {
			if mean, want := float64(s)/fleets, float64(gateways)/3; mean < 0.95*want || mean > 1.05*want {
				t.Errorf("%d gateways: member %d has %.2f on average, want %.2f", gateways, i, mean, want)
			}
		}
	}
}

// fillFleet has the gateways of on, in a random order, look for a vacant
// member of eps, each seeing the others' moves, until no member is vacant
// or no gateway may fill any more.
func fillFleet(rng *rand.Rand, eps []*Endpoint, on []int) {
	fills := make([]int, len(on))
	for range 100 {
		if !hasVacant(on, len(eps)) {
			return
		}
		for _, g := range rng.Perm(len(on)) {
			if fills[g] < fillsPerToss && fillOnce(rng, eps, on, g) {
				fills[g]++
			}
		}
	}
}

func hasVacant(on []int, members int) bool {
	for m := range members {
		if !slices.Contains(on, m) {
			return true
		}
	}
	return false
}

// fillOnce has gateway g of on look once for a vacant member of eps, with
// readings of every member made from on, and reports whether it moved.
func fillOnce(rng *rand.Rand, eps []*Endpoint, on []int, g int) bool {
	since := time.Now()
	var counts [3]int64
	for _, m := range on {
		counts[m]++
	}
	for i, ep := range eps {
		read(ep, counts[i], 0, since.Add(time.Second))
	}
	cur := eps[on[g]]
	v := vacantMember(eps, cur, since, since)
	if v == nil || rng.Float64() >= fillChance(eps, cur, since) {
		return false
	}
	on[g] = slices.Index(eps, v)
	return true
}

func TestParseClientRPCs(t *testing.T) {
	body := strings.Join([]string{
		`# TYPE grpc_server_started_total counter`,
		`grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 7`,
		`grpc_server_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3`,
		`grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 5`,
		`grpc_server_started_total{grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"} 2`,
		`grpc_server_started_total{grpc_method="Status",grpc_service="etcdserverpb.Maintenance",grpc_type="unary"} 900`,
		`grpc_server_started_total{grpc_method="Watch",grpc_service="grpc.health.v1.Health",grpc_type="server_stream"} 4`,
		`# TYPE grpc_server_handled_total counter`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 7`,
		`grpc_server_handled_total{grpc_code="Canceled",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 3`,
		``,
	}, "\n")
	got, err := parseClientRPCs([]byte(body), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (clientRPCs{streams: 4, unary: 10}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := parseClientRPCs([]byte("grpc_server_started_total{grpc_type=\"unary 1\n"), time.Time{}); err == nil {
		t.Fatal("no error for a body that is no exposition")
	}
}
