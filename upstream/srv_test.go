package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// srvPool serves records as the _etcd-client records of example.test from
// a real DNS server, resolves them, and returns a pool of the result.
func srvPool(t *testing.T, records ...dnstest.SRV) *Pool {
	t.Helper()
	d, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	s := resolver.SRV{Domain: "example.test", Insecure: true, DNSServer: d.Addr}
	_, plainName := s.Names()
	d.SetSRV(plainName, records...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPool(Options{})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", res.Endpoints)
	return p
}

// shares makes n picks, each a fresh random pick (stickiness aside), and
// returns each address's share.
func shares(p *Pool, n int) map[string]float64 {
	counts := map[string]int{}
	for range n {
		counts[p.pick(p.Endpoints(), nil, levelUp).Addr()]++
		p.policy.Load().Policy.(*StickyRandom).current.Store(nil)
	}
	out := map[string]float64{}
	for addr, c := range counts {
		out[addr] = float64(c) / float64(n)
	}
	return out
}

func TestSRVPriorityAndWeightFromDNS(t *testing.T) {
	p := srvPool(t,
		dnstest.SRV{Priority: 10, Weight: 60, Port: 2379, Target: "a.example.test"},
		dnstest.SRV{Priority: 10, Weight: 30, Port: 2379, Target: "b.example.test"},
		dnstest.SRV{Priority: 10, Weight: 10, Port: 2379, Target: "c.example.test"},
		dnstest.SRV{Priority: 20, Weight: 100, Port: 2379, Target: "backup.example.test"},
	)
	if len(p.Endpoints()) != 4 {
		t.Fatalf("pool has %d endpoints, want the 4 records", len(p.Endpoints()))
	}
	const n = 10000
	got := shares(p, n)
	if got["backup.example.test:2379"] != 0 {
		t.Fatalf("the lower-priority class took %.2f%% of picks while the top class is active", 100*got["backup.example.test:2379"])
	}
	for addr, w := range map[string]float64{"a.example.test:2379": .6, "b.example.test:2379": .3, "c.example.test:2379": .1} {
		if got[addr] < w-0.03 || got[addr] > w+0.03 {
			t.Errorf("%s: share %.3f over %d picks, want %.2f±0.03", addr, got[addr], n, w)
		}
	}

	// One endpoint of the top class left active: it takes everything.
	for _, ep := range p.Endpoints() {
		if ep.Addr() == "a.example.test:2379" || ep.Addr() == "b.example.test:2379" {
			ep.active.Store(false)
		}
	}
	if got := shares(p, n); got["c.example.test:2379"] != 1 {
		t.Fatalf("shares %v: the last active endpoint of the top class must take every pick", got)
	}
	// None left: the next class takes over.
	for _, ep := range p.Endpoints() {
		if ep.Addr() == "c.example.test:2379" {
			ep.active.Store(false)
		}
	}
	if got := shares(p, 100); got["backup.example.test:2379"] != 1 {
		t.Fatalf("shares %v: with the top class down the next class must take over", got)
	}
}

func TestSRVZeroWeightFromDNSGetsASmallShare(t *testing.T) {
	p := srvPool(t,
		dnstest.SRV{Weight: 1, Port: 2379, Target: "a.example.test"},
		dnstest.SRV{Weight: 1, Port: 2379, Target: "b.example.test"},
		dnstest.SRV{Weight: 0, Port: 2379, Target: "z.example.test"},
	)
	const n = 10000
	got := shares(p, n)
	// Weight 0 counts 1 against 100 per unit: about 0.5% here.
	if z := got["z.example.test:2379"]; z == 0 || z > 0.02 {
		t.Fatalf("weight-0 record: share %.4f over %d picks, want small but not zero", z, n)
	}
	for _, addr := range []string{"a.example.test:2379", "b.example.test:2379"} {
		if got[addr] < 0.47 || got[addr] > 0.52 {
			t.Errorf("%s: share %.3f, want about 0.5", addr, got[addr])
		}
	}
}
