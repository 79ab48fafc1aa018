package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// figuresEnv turns on TestUpgradeFigures, which measures rather than
// tests: it takes a minute and most of the open-file limit.
const figuresEnv = "ETCD_GATEWAY_UPGRADE_FIGURES"

// handoverDuration reads the duration the old gateway logged for its
// handover (first message to last).
func handoverDuration(t *testing.T, old *child) time.Duration {
	t.Helper()
	lines := old.logLines("handed over to the new gateway")
	if len(lines) != 1 {
		t.Fatalf("the old gateway logged %d handovers", len(lines))
	}
	var f struct {
		Duration string `json:"duration"`
		Export   string `json:"export"`
		Send     string `json:"send"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &f); err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(f.Duration)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("handover %s: quiescing the connections %s, handing them over %s", f.Duration, f.Export, f.Send)
	return d
}

// TestUpgradeFigures measures the figures of docs/performance.md
// ("Handovers"): the time to hand over many idle connections, the longest
// time an active connection sees no progress during a handover, and 20
// handovers in a row under a 64-connection request/response load with a
// connect loop beside it. Run it with ETCD_GATEWAY_UPGRADE_FIGURES=1 and
// -v.
func TestUpgradeFigures(t *testing.T) {
	if os.Getenv(figuresEnv) == "" {
		t.Skip("set " + figuresEnv + "=1 to measure the handover figures")
	}
	// Idle connections: as many as the open-file limit lets two gateways
	// and the test (client and member ends) hold at once.
	idleN := 4000
	echo, probe := testutil.Echo(t), testutil.Echo(t)
	dir := t.TempDir()
	addr, probeAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	sock := filepath.Join(dir, "upgrade.sock")
	path := filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf("log-level: info\nlog-format: json\nupgrade-socket: %s\nhealth-check: {type: none}\nlisteners:\n  - {name: main, listen-addr: %q, endpoints: [%q]}\n  - {name: probe, listen-addr: %q, endpoints: [%q]}\n",
		sock, addr, echo.Addr, probeAddr, probe.Addr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startUpgradable(t, path, probeAddr, sock)
	idle := make([]net.Conn, idleN)
	for i := range idle {
		idle[i] = testutil.Dial(t, addr)
	}
	for i, c := range idle {
		if err := testutil.RoundTrip(c, "i"); err != nil {
			t.Fatalf("idle %d: %v", i, err)
		}
	}
	next := startChild(t, path, probeAddr, 0)
	testutil.WaitFor(t, "the new gateway to take over", 60*time.Second, func() bool {
		return len(next.logLines("took over from the running gateway")) == 1
	})
	gw.waitExit(t, "the old gateway")
	t.Logf("FIGURE idle: %d idle connections handed over in %s (old process, first message to last)", idleN, handoverDuration(t, gw))
	gw = next
	for i, c := range idle {
		if err := testutil.RoundTrip(c, "j"); err != nil {
			t.Fatalf("idle %d after the handover: %v", i, err)
		}
		c.Close()
	}

	// 64 connections under request/response load through 20 handovers;
	// each connection's longest round trip is its longest stall.
	const load, rounds = 64, 20
	stop := make(chan struct{})
	var requests, failed atomic.Int64
	var mu sync.Mutex
	var worst time.Duration
	var wg sync.WaitGroup
	accepted := echo.Accepted()
	for i := range load {
		c := testutil.Dial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			msg := fmt.Sprintf("conn %d %0100d\n", i, 0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				if err := testutil.RoundTrip(c, msg); err != nil {
					failed.Add(1)
					return
				}
				d := time.Since(start)
				requests.Add(1)
				mu.Lock()
				worst = max(worst, d)
				mu.Unlock()
			}
		}()
	}
	loop := startConnectLoop(t, 2, probeAddr, echoExchange)
	testutil.WaitFor(t, "the load to reach the member", 10*time.Second, func() bool {
		return echo.Accepted() == accepted+load
	})
	mu.Lock()
	worst = 0
	mu.Unlock()
	var total time.Duration
	for round := range rounds {
		before := requests.Load()
		next := startChild(t, path, probeAddr, 0)
		testutil.WaitFor(t, "the new gateway to take over", 20*time.Second, func() bool {
			return len(next.logLines("took over from the running gateway")) == 1
		})
		gw.waitExit(t, fmt.Sprintf("the old gateway of handover %d", round+1))
		total += handoverDuration(t, gw)
		gw = next
		testutil.WaitFor(t, "requests through the new gateway", 20*time.Second, func() bool {
			return requests.Load() > before+load
		})
	}
	close(stop)
	wg.Wait()
	loop.end()
	t.Logf("FIGURE load: %d handovers under %d connections: %d requests, %d errors, %d reconnects to the member, %d of %d connects failed; longest round trip %s; mean handover %s",
		rounds, load, requests.Load(), failed.Load(), echo.Accepted()-accepted-load, loop.failed.Load(), loop.failed.Load()+loop.ok.Load(), worst, total/rounds)
	if failed.Load() != 0 || loop.failed.Load() != 0 || echo.Accepted() != accepted+load {
		t.Error("errors, reconnects or refused connects")
	}
	if err := gw.stop(t); err != nil {
		t.Fatal(err)
	}
}
