package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// parallel64 runs body from 64 goroutines whatever GOMAXPROCS is, as 64
// concurrent client connections would.
func parallel64(b *testing.B, body func(pb *testing.PB)) {
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.RunParallel(body)
}

// BenchmarkPick is the endpoint choice for a new connection, from 64
// goroutines at once, among one, three and five active endpoints.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{1, 3, 5} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			var addrs []string
			for i := range n {
				addrs = append(addrs, fmt.Sprintf("10.0.0.%d:2379", i+1))
			}
			for _, policy := range []Policy{&StickyRandom{}, weightedOnly{}} {
				b.Run(fmt.Sprintf("%T", policy), func(b *testing.B) {
					p := NewPool(Options{Policy: policy})
					defer p.Close()
					p.UpdateFrom("config", resolver.Static(addrs))
					eps := p.Endpoints()
					b.ReportAllocs()
					b.ResetTimer()
					parallel64(b, func(pb *testing.PB) {
						for pb.Next() {
							if p.pick(eps, nil, levelUp) == nil {
								b.Error("no endpoint picked")
							}
						}
					})
				})
			}
		})
	}
}

// weightedOnly picks at random every time (the SRV-weighted pick without
// stickiness), the heavier path of the default policy.
type weightedOnly struct{}

func (weightedOnly) Pick(c []*Endpoint) *Endpoint { return weightedRandom(c) }

// nopConn is a connection that does nothing, for dialling without a network.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// BenchmarkDialAndTrack is what the pool does per client connection,
// without the network: pick, dial (a no-op dial function), track the
// connection on its endpoint, untrack it; from 64 goroutines at once.
func BenchmarkDialAndTrack(b *testing.B) {
	p := NewPool(Options{Dial: func(context.Context, string, string) (net.Conn, error) { return nopConn{}, nil }})
	defer p.Close()
	p.UpdateFrom("config", resolver.Static([]string{"10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"}))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	parallel64(b, func(pb *testing.PB) {
		for pb.Next() {
			c, ep, err := p.Dial(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			untrack := ep.Track(closerConn{c})
			untrack()
		}
	})
}

// BenchmarkParseClientRPCs is the gateway's side of one reading of a
// member's client RPCs (fill.go): parsing a real member's /metrics, after
// a watch and some puts.
func BenchmarkParseClientRPCs(b *testing.B) {
	addr := testutil.Cluster(b, 1).ClientAddrs()[0]
	cli := testutil.Client(b, addr)
	cli.Watch(b.Context(), "k")
	for i := range 10 {
		if _, err := cli.Put(b.Context(), fmt.Sprint("k", i), "v"); err != nil {
			b.Fatal(err)
		}
	}
	body := get(b, "http://"+addr+metricsPath)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseClientRPCs(body, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

func get(b *testing.B, u string) []byte {
	resp, err := http.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return body
}
