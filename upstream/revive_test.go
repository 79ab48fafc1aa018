package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// TestReaddedEndpointCountsItsOpenConnections: an address removed by an
// update and added back while its connections are open counts them, and
// a drain timer of the removal doesn't close them once it is back.
func TestReaddedEndpointCountsItsOpenConnections(t *testing.T) {
	const drain = 50 * time.Millisecond
	b, a := newServer(t), newServer(t)
	p := newTestPool(t, Settings{RetryDelay: time.Hour, OnEndpointRemoved: config.RemovedDrain, DrainTimeout: drain}, b.addr, a.addr)
	conn, ep, err := p.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := <-b.conns
	defer peer.Close()
	untrack := ep.Track(closerConn{conn})

	p.UpdateFrom("config", resolver.Static([]string{a.addr}))
	added, _ := p.UpdateFrom("config", resolver.Static([]string{b.addr, a.addr}))
	if len(added) != 1 || added[0] != b.addr {
		t.Fatalf("re-adding %s: added %v", b.addr, added)
	}
	back := endpoint(p, b.addr)
	if back.OpenConns() != 1 || back.Stats().TotalConns != 1 || !back.Up() || back.Stats().Removed {
		t.Fatalf("re-added endpoint: open %d total %d up %v removed %v; want its open connection counted, up",
			back.OpenConns(), back.Stats().TotalConns, back.Up(), back.Stats().Removed)
	}
	// The drain timer of the removal has fired by the time the read
	// times out: the connection must still be open.
	_ = peer.SetReadDeadline(time.Now().Add(drain + closeSpread + 300*time.Millisecond))
	if _, err := peer.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("the re-added endpoint's connection was closed by the old drain: %v", err)
	}
	untrack()
	if back.OpenConns() != 0 {
		t.Fatalf("open %d after the connection ended, want 0", back.OpenConns())
	}
}

// TestRemovedEndpointsAreForgotten: a removed endpoint without
// connections is not kept past the next update, so that churn of
// addresses doesn't grow the pool; one that comes back then is new.
func TestRemovedEndpointsAreForgotten(t *testing.T) {
	b, a := newServer(t), newServer(t)
	p := newTestPool(t, Settings{RetryDelay: time.Hour}, b.addr, a.addr)
	old := endpoint(p, b.addr)
	p.UpdateFrom("config", resolver.Static([]string{a.addr}))
	p.UpdateFrom("config", resolver.Static([]string{a.addr}))
	p.updateMu.Lock()
	n := len(p.removed)
	p.updateMu.Unlock()
	if n != 0 {
		t.Fatalf("%d removed endpoints kept without connections, want 0", n)
	}
	p.UpdateFrom("config", resolver.Static([]string{b.addr, a.addr}))
	if endpoint(p, b.addr) == old {
		t.Fatal("an endpoint without connections was revived after it should have been forgotten")
	}
}
