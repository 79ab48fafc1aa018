package upstream

import (
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
}

func TestBusierThanMean(t *testing.T) {
	at := time.Now()
	a, b, c := newEndpoint(resolver.Endpoint{Addr: "a:1"}), newEndpoint(resolver.Endpoint{Addr: "b:1"}), newEndpoint(resolver.Endpoint{Addr: "c:1"})
	up := []*Endpoint{a, b, c}
	read(a, 1, 0, at) // a gateway alone on a
	read(b, 11, 0, at)
	read(c, 0, 0, at)
	if busierThanMean(up, a, at.Add(-time.Minute)) {
		t.Error("a, with 1 of 12 streams, is busier than the mean")
	}
	if !busierThanMean(up, b, at.Add(-time.Minute)) {
		t.Error("b, with 11 of 12 streams, is not busier than the mean")
	}
	if busierThanMean(up, c, at.Add(-time.Minute)) {
		t.Error("c, vacant, is busier than the mean")
	}
}

// TestFillVacant: a gateway on a busy member sees a vacant one, waits
// for its moment, and moves its pick there only when a reading after
// that moment still shows it vacant; once per look.
func TestFillVacant(t *testing.T) {
	p, a, b := movePool(t, Settings{})
	st := p.policy.Load().Policy.(*StickyRandom)
	st.current.Store(a)
	trackMovable(a, true, time.Minute)
	now := time.Now()
	p.fill = fillState{from: now.Add(-time.Minute), until: now.Add(time.Minute)}
	read(a, 5, 0, now)
	read(b, 0, 0, now)
	up := []*Endpoint{a, b}
	p.fillVacant(st, up, now)
	at := p.fill.at
	if at.IsZero() || st.current.Load() != a {
		t.Fatalf("after the first look: moment %v, pick %s; want a moment, pick a", at, st.current.Load().addr)
	}
	p.fillVacant(st, up, at.Add(time.Millisecond)) // b's reading is older than the moment
	if st.current.Load() != a || p.stickyMoving.Load() {
		t.Fatal("filled on a reading older than its moment")
	}
	read(b, 0, 0, at.Add(time.Millisecond))
	p.fillVacant(st, up, at.Add(2*time.Millisecond))
	if st.current.Load() != b || !p.stickyMoving.Load() {
		t.Fatal("did not fill b, vacant after the moment")
	}
	if p.fill != (fillState{}) {
		t.Fatalf("the look goes on after a fill: %+v", p.fill)
	}
}

// TestFillVacantForgetsAFilledMember: a vacant member that another
// gateway filled before this one's moment is left as it is.
func TestFillVacantForgetsAFilledMember(t *testing.T) {
	p, a, b := movePool(t, Settings{})
	st := p.policy.Load().Policy.(*StickyRandom)
	st.current.Store(a)
	trackMovable(a, true, time.Minute)
	now := time.Now()
	p.fill = fillState{from: now.Add(-time.Minute), until: now.Add(time.Minute)}
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
// one, and the members stay even in expectation.
func TestFillLeavesNoMemberVacant(t *testing.T) {
	const gateways, fleets = 12, 4000
	eps := []*Endpoint{newEndpoint(resolver.Endpoint{Addr: "a:1"}), newEndpoint(resolver.Endpoint{Addr: "b:1"}), newEndpoint(resolver.Endpoint{Addr: "c:1"})}
	rng := rand.New(rand.NewPCG(3, 4))
	var sum [3]int
	for range fleets {
		counts := rollFleet(rng, eps, gateways, fillFleet)
		if slices.Contains(counts[:], 0) {
			t.Fatalf("a fleet ended with a member vacant: %v", counts)
		}
		for i, n := range counts {
			sum[i] += n
		}
	}
	for i, s := range sum {
		if mean := float64(s) / fleets; mean < 3.8 || mean > 4.2 {
			t.Errorf("member %d: mean %.2f gateways, want 4", i, mean)
		}
	}
}

// fillFleet has each gateway of on, in a random order, look once for a
// vacant member of eps, each seeing the others' moves.
func fillFleet(rng *rand.Rand, eps []*Endpoint, on []int) {
	since := time.Now()
	for _, g := range rng.Perm(len(on)) {
		var counts [3]int64
		for _, m := range on {
			counts[m]++
		}
		for i, ep := range eps {
			read(ep, counts[i], 0, since.Add(time.Second))
		}
		cur := eps[on[g]]
		if v := vacantMember(eps, cur, since, since); v != nil && busierThanMean(eps, cur, since) {
			on[g] = slices.Index(eps, v)
		}
	}
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
	if _, err := parseClientRPCs([]byte("not {metrics"), time.Time{}); err == nil {
		t.Fatal("no error for a body that is no exposition")
	}
}
