package gateway

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestMemberKilledMidStream kills the member a watch is streaming from: a
// raw connection to it sees a clean close, not a hang, and the etcd client
// reconnects through the gateway to another member and keeps receiving.
func TestMemberKilledMidStream(t *testing.T) {
	c := startCluster(t, 3)
	dir := t.TempDir()
	addr := freeAddr(t)
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), render(listenerSpec{name: "main", addr: addr, endpoints: c.ClientAddrs()}))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := newClient(t, addr)
	wch := cli.Watch(ctx, "s/", clientv3.WithPrefix())
	if _, err := cli.Put(ctx, "s/0", "before"); err != nil {
		t.Fatal(err)
	}
	raw := rawConn(t, addr) // sticky: to the same member
	used := h.usedEndpoint("main")
	accepted := h.gw.Group().Listeners()["main"].TotalConns()

	for i, m := range c.Members {
		if m.ClientAddr() == used {
			c.Stop(i)
		}
	}
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("raw connection to the killed member: %v, want a clean EOF", err)
	}

	var alive string
	for _, a := range c.ClientAddrs() {
		if a != used {
			alive = a
		}
	}
	writer := newClient(t, alive)
	if _, err := writer.Put(ctx, "s/1", "after"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for !seen["s/1"] {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Canceled {
				t.Fatalf("watch ended: closed=%v err=%v", !ok, wr.Err())
			}
			for _, ev := range wr.Events {
				seen[string(ev.Kv.Key)] = true
			}
		case <-ctx.Done():
			t.Fatalf("the watch did not resume on another member (saw %v)", seen)
		}
	}
	if got := h.gw.Group().Listeners()["main"].TotalConns(); got <= accepted {
		t.Fatal("the client did not reconnect through the gateway")
	}
}

// TestSoak runs load, member failover and reloads at once for about two
// minutes (ETCD_GATEWAY_SOAK overrides): every client error must fall in
// the window after a member was deliberately killed; none may come from the
// gateway itself (reloads, accept, forwarding).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped in -short")
	}
	duration := 100 * time.Second
	if d, err := time.ParseDuration(os.Getenv("ETCD_GATEWAY_SOAK")); err == nil {
		duration = d
	}
	c := startCluster(t, 3)
	dir := t.TempDir()
	addr := freeAddr(t)
	eps := c.ClientAddrs()
	dead := freeAddr(t) // a listed endpoint that never answers: failover on every fresh pick of it
	config := func(i int) string {
		list := slices.Clone(eps)
		if i%2 == 1 {
			list = append(list, dead)
		}
		return render(listenerSpec{name: "main", addr: addr, endpoints: list, extra: "    retry-delay: 500ms\n"})
	}
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), config(0))

	// killWindows records when members were killed; an error within grace
	// after a kill is accounted for by it.
	const grace = 10 * time.Second
	var mu sync.Mutex
	var kills []time.Time
	accounted := func(at time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range kills {
			if !at.Before(k) && at.Sub(k) < grace {
				return true
			}
		}
		return false
	}

	ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
	defer cancel()
	var stop atomic.Bool
	var ops, deliberate, unexplained atomic.Int64
	var firstUnexplained atomic.Pointer[string]
	var wg sync.WaitGroup
	const clients = 8
	for i := range clients {
		cli := newClient(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("soak/%d", i)
			for n := 0; n < 10_000_000 && !stop.Load(); n++ { // bounded
				opCtx, opCancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := cli.Put(opCtx, key, fmt.Sprint(n))
				if err == nil {
					_, err = cli.Get(opCtx, key)
				}
				opCancel()
				switch {
				case err == nil:
					ops.Add(1)
				case accounted(time.Now()):
					deliberate.Add(1)
				default:
					unexplained.Add(1)
					msg := fmt.Sprintf("%s: %v", time.Now().Format(time.RFC3339Nano), err)
					firstUnexplained.CompareAndSwap(nil, &msg)
				}
			}
		}()
	}

	start := time.Now()
	reloads, killed := 0, 0
	reloadTick := time.NewTicker(2 * time.Second)
	defer reloadTick.Stop()
	killTick := time.NewTicker(15 * time.Second)
	defer killTick.Stop()
	down := -1
	for time.Since(start) < duration {
		select {
		case <-reloadTick.C:
			reloads++
			saveRenameOver(t, h.path, config(reloads))
			h.waitApplied(uint64(reloads))
		case <-killTick.C:
			if down >= 0 {
				if err := c.Restart(down); err != nil {
					t.Fatalf("restart member %d: %v", down, err)
				}
				down = -1
				continue
			}
			// Kill the member the gateway is using now.
			used := h.usedNow()
			for i, m := range c.Members {
				if m.ClientAddr() == used {
					mu.Lock()
					kills = append(kills, time.Now())
					mu.Unlock()
					c.Stop(i)
					down, killed = i, killed+1
				}
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("soak %s: %d ok operations, %d reloads, %d member kills, %d errors after a kill, %d unexplained",
		time.Since(start).Round(time.Second), ops.Load(), reloads, killed, deliberate.Load(), unexplained.Load())
	if n := unexplained.Load(); n > 0 {
		t.Fatalf("%d client errors not caused by a deliberate failure; first: %s", n, *firstUnexplained.Load())
	}
	if killed == 0 || reloads < 10 || ops.Load() < 1000 {
		t.Fatalf("the soak did too little: %d kills, %d reloads, %d operations", killed, reloads, ops.Load())
	}
}

// usedNow returns the endpoint with the most open connections.
func (h *harness) usedNow() string {
	best, most := "", int64(-1)
	for _, ep := range h.gw.Group().Listeners()["main"].Pool().Endpoints() {
		if n := ep.OpenConns(); n > most {
			best, most = ep.Addr(), n
		}
	}
	return best
}
