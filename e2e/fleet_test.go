//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

const (
	// spreadTimeout bounds how long after the last member returned the
	// fleet may take to leave no member without a gateway: up to three
	// fills one after the other, in a look of sixty check intervals.
	spreadTimeout = 90 * time.Second
	// spreadStable is how long the spread must hold unchanged to count:
	// past two rounds of moves (a second each, jittered by half), so
	// that a gateway's toss for the last member, still to come when the
	// wait begins, cannot empty a member after it.
	spreadStable = 3 * time.Second
	// fleetPoll is how often the fleet's /status is read in a wait: 12
	// reads every 5 ms would starve the gateways on two cores.
	fleetPoll = 250 * time.Millisecond
	// fleetPrefix holds the keys the fleet's clients watch.
	fleetPrefix = "fleet/"
)

// fleetGateway is a child gateway of the fleet: its client address and
// admin server.
type fleetGateway struct {
	*child
	addr, admin string
}

// fleetConfig is a minimal config: the default policy (sticky-random),
// checks every second and a slow start of a second, so that a returned
// member gets its coin tosses within the test's time.
func fleetConfig(addr, admin string, endpoints []string) string {
	return fmt.Sprintf(`log-level: info
admin-addr: %s
slow-start: 1s
health-check: {interval: 1s, fall: 2, rise: 2}
listeners:
  - name: etcd
    listen-addr: %s
    endpoints: [%s]
    dial-timeout: 1s
`, admin, addr, strings.Join(endpoints, ", "))
}

// startFleet starts n gateways in front of endpoints, all at once, then
// waits until each accepts: their starts overlap.
func startFleet(t *testing.T, n int, endpoints []string) []*fleetGateway {
	t.Helper()
	dir := t.TempDir()
	fleet := make([]*fleetGateway, n)
	for i := range fleet {
		g := &fleetGateway{addr: testutil.ListenAddr(t), admin: testutil.ListenAddr(t)}
		path := filepath.Join(dir, fmt.Sprintf("gw%d.yaml", i))
		if err := os.WriteFile(path, []byte(fleetConfig(g.addr, g.admin, endpoints)), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := gatewayCommand(setup{}, "start", "--config", path)
		g.child = launch(t, cmd, "start", func(*child) bool { return true })
		fleet[i] = g
	}
	for i, g := range fleet {
		testutil.WaitFor(t, fmt.Sprintf("gateway %d to listen", i), 30*time.Second, func() bool { return dialable(g.addr)(g.child) })
	}
	return fleet
}

// waitEvery waits until cond holds, checking every fleetPoll, for at
// most timeout.
func waitEvery(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(fleetPoll)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// member returns the address of the one endpoint that holds the
// gateway's client connection, or "" while there is not exactly one (a
// move under way).
func (g *fleetGateway) member(t *testing.T) string {
	t.Helper()
	on := ""
	for addr, ep := range statusEndpoints(t, g.admin) {
		if ep.Open > 0 && on != "" {
			return ""
		}
		if ep.Open > 0 {
			on = addr
		}
	}
	return on
}

// spread counts the gateways on each member, by address; ok is false
// while a gateway's connection is not on exactly one.
func spread(t *testing.T, fleet []*fleetGateway) (map[string]int, bool) {
	t.Helper()
	counts := map[string]int{}
	for _, g := range fleet {
		m := g.member(t)
		if m == "" {
			return counts, false
		}
		counts[m]++
	}
	return counts, true
}

// fleetWatches is one watching client per gateway: each watches
// fleetPrefix through its gateway and records what it saw.
type fleetWatches struct {
	clients []*clientv3.Client
	last    []atomic.Int64 // the last revision each watch delivered
	errs    atomic.Int64
	first   atomic.Pointer[error]
	wg      sync.WaitGroup
}

// startFleetWatches starts a watch of fleetPrefix through each gateway
// from revision start on (none of the checkpoints' puts is missed by a
// watch not yet made), stopped at cleanup.
func startFleetWatches(t *testing.T, fleet []*fleetGateway, start int64) *fleetWatches {
	t.Helper()
	w := &fleetWatches{last: make([]atomic.Int64, len(fleet))}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); w.wg.Wait() })
	for i, g := range fleet {
		cli := testutil.Client(t, g.addr)
		w.clients = append(w.clients, cli)
		wch := cli.Watch(ctx, fleetPrefix, clientv3.WithPrefix(), clientv3.WithRev(start))
		w.wg.Go(func() { w.run(ctx, i, wch) })
	}
	return w
}

// run records the watch's responses until ctx ends: an error, a
// cancellation or an end before ctx's is a failed client op.
func (w *fleetWatches) run(ctx context.Context, i int, wch clientv3.WatchChan) {
	for resp := range wch {
		if err := resp.Err(); err != nil || resp.Canceled {
			w.fail(fmt.Errorf("watch %d: %v (canceled %v)", i, err, resp.Canceled))
			return
		}
		for _, ev := range resp.Events {
			w.last[i].Store(ev.Kv.ModRevision)
		}
	}
	if ctx.Err() == nil {
		w.fail(fmt.Errorf("watch %d: its channel closed", i))
	}
}

func (w *fleetWatches) fail(err error) {
	w.errs.Add(1)
	w.first.CompareAndSwap(nil, &err)
}

// checkpoint puts a key through the member at addr and waits until
// every watch has delivered it, then reads through every gateway: each
// client still works.
func (w *fleetWatches) checkpoint(t *testing.T, addr, what string) {
	t.Helper()
	cli := testutil.Client(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Put(ctx, fleetPrefix+what, what)
	if err != nil {
		t.Fatalf("put %s: %v", what, err)
	}
	rev := resp.Header.Revision
	waitEvery(t, "every watch to deliver "+what, 30*time.Second, func() bool {
		for i := range w.last {
			if w.last[i].Load() < rev {
				return false
			}
		}
		return true
	})
	w.readEach(t, what)
}

// readEach reads through each gateway with its watching client.
func (w *fleetWatches) readEach(t *testing.T, what string) {
	t.Helper()
	for i, cli := range w.clients {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Get(ctx, fleetPrefix+what)
		cancel()
		if err != nil {
			w.fail(fmt.Errorf("get %s through gateway %d: %w", what, i, err))
		}
	}
}

// rollMembers kills and restarts each member in turn, as a rolling
// upgrade does: the next only once the member serves again and every
// gateway has it back, its slow start over (its coin tossed). It
// returns when the last member served again.
func rollMembers(t *testing.T, members []*member, fleet []*fleetGateway) time.Time {
	t.Helper()
	var served time.Time
	for _, m := range members {
		m.kill(t)
		m.restart(t)
		served = time.Now()
		waitEvery(t, "every gateway to have "+m.config.Name+" back", 30*time.Second, func() bool {
			for _, g := range fleet {
				ep := statusEndpoints(t, g.admin)[m.addr()]
				if ep.State != "active" || ep.SlowStart != nil {
					return false
				}
			}
			return true
		})
	}
	return served
}

// TestFleetRollingRestart: a fleet of gateways with the default policy,
// sticky-random, each with one watching client, in front of three
// members that are killed and restarted in turn. Within spreadTimeout of
// the last return no member may be left without a gateway, and no client
// op may have failed: the watches deliver every event, each gateway
// serves.
//
// Each gateway moves to a returning member alone, by a coin, which leaves
// a member with none in about 2 % of rolling restarts of twelve gateways
// (the fleet the coin is designed for), and in most with three
// (TestStickyMoveChanceSpreadsAFleet); the members' own counters then
// show it vacant, and a gateway fills it (upstream/fill.go). Three
// gateways must end one on each member: without the fill that fails in
// about three runs of four.
func TestFleetRollingRestart(t *testing.T) {
	for _, size := range []int{3, 12} {
		t.Run(fmt.Sprintf("gateways=%d", size), func(t *testing.T) { rollFleetOnce(t, size) })
	}
}

func rollFleetOnce(t *testing.T, size int) {
	members := startMembers(t, 3)
	fleet := startFleet(t, size, memberAddrs(members))
	t.Cleanup(func() {
		if t.Failed() {
			for i, g := range fleet {
				t.Logf("gateway %d:\n%s", i, g.logs.String())
			}
		}
	})
	w := startFleetWatches(t, fleet, revision(t, members[0].addr())+1)
	w.checkpoint(t, members[0].addr(), "before")
	start := time.Now()
	returned := rollMembers(t, members, fleet)
	counts := waitSpread(t, fleet, len(members))
	t.Logf("rolling restart in %s; gateways per member %v, %s after the last return; %d gateways filled a vacant member", returned.Sub(start).Round(time.Millisecond), counts, time.Since(returned).Round(time.Millisecond), fills(fleet))
	w.checkpoint(t, members[0].addr(), "after")
	if n := w.errs.Load(); n != 0 {
		t.Fatalf("%d client ops failed, the first: %v", n, *w.first.Load())
	}
}

// fills counts the gateways of the fleet that moved to a member no
// client used (upstream/fill.go), by their logs.
func fills(fleet []*fleetGateway) int {
	n := 0
	for _, g := range fleet {
		n += len(g.logLines("no client uses the member"))
	}
	return n
}

// waitSpread waits up to spreadTimeout until, for spreadStable on end,
// every gateway's connection is on one member and each of the n members
// has a gateway, and returns the gateways per member; the last count is
// logged on a failure.
func waitSpread(t *testing.T, fleet []*fleetGateway, n int) map[string]int {
	t.Helper()
	var counts map[string]int
	defer func() {
		if t.Failed() {
			t.Logf("gateways per member at the end of the wait: %v", counts)
		}
	}()
	var since time.Time // since when the spread has held
	waitEvery(t, "no member left without a gateway", spreadTimeout, func() bool {
		var settled bool
		counts, settled = spread(t, fleet)
		switch {
		case !settled || len(counts) < n:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		}
		return !since.IsZero() && time.Since(since) >= spreadStable
	})
	return counts
}
