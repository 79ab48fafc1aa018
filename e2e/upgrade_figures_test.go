//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
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
		CPU      string `json:"cpu"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &f); err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(f.Duration)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("handover %s: quiescing the connections %s, handing them over %s; CPU time %s", f.Duration, f.Export, f.Send, f.CPU)
	return d
}

// figuresIdleEnv sets how many idle connections TestUpgradeFigures hands
// over; figuresIdle by default.
const figuresIdleEnv = "ETCD_GATEWAY_UPGRADE_FIGURES_IDLE"

// figuresIdle is about as many idle connections as one gateway holds
// within the open-file limit of 20,000, with the member and the clients in
// other processes: two descriptors each, and the gateway's descriptor
// reserve (256, listener/fds.go) and its own 158 (three listeners, the
// loops, the admin server...) leave room for 9,793; the four active
// connections beside them make 9,789.
const figuresIdle = 9785

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
	idleN := figuresIdle
	if n, err := strconv.Atoi(os.Getenv(figuresIdleEnv)); err == nil {
		idleN = n
	}
	fg := startFiguresGateway(t)
	idle := fg.openIdle(t, idleN)
	fg.measureIdleHandover(t, idleN)
	fg.checkIdleAfter(t, idle)
	fg.measureLoadHandovers(t)
	if err := fg.gw.stop(t); err != nil {
		t.Fatal(err)
	}
}

// figuresTest is TestUpgradeFigures's gateway and members.
type figuresTest struct {
	echo                            *testutil.Server
	addr, idleAddr, probeAddr, path string
	gw                              *child
}

// startFiguresGateway starts the members and a gateway with a main, an
// idle and a probe listener.
func startFiguresGateway(t *testing.T) *figuresTest {
	t.Helper()
	fg := &figuresTest{}
	echo, probe := testutil.Echo(t), testutil.Echo(t)
	fg.echo = echo
	idleMember := startEcho(t, 20000)
	dir := t.TempDir()
	fg.addr, fg.idleAddr, fg.probeAddr = testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	sock := filepath.Join(dir, "upgrade.sock")
	fg.path = filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf("log-level: info\nlog-format: json\nupgrade-socket: %s\nhealth-check: {type: none}\nlisteners:\n  - {name: main, listen-addr: %q, endpoints: [%q]}\n  - {name: idle, listen-addr: %q, endpoints: [%q]}\n  - {name: probe, listen-addr: %q, endpoints: [%q]}\n",
		sock, fg.addr, echo.Addr, fg.idleAddr, idleMember, fg.probeAddr, probe.Addr)
	if err := os.WriteFile(fg.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	fg.gw = startUpgradable(t, fg.path, fg.probeAddr, sock)
	return fg
}

// openIdle opens idleN idle connections, each after one exchange.
func (fg *figuresTest) openIdle(t *testing.T, idleN int) []net.Conn {
	t.Helper()
	idle := make([]net.Conn, idleN)
	for i := range idle {
		idle[i] = testutil.Dial(t, fg.idleAddr)
	}
	for i, c := range idle {
		if err := testutil.RoundTrip(c, "i"); err != nil {
			t.Fatalf("idle %d: %v", i, err)
		}
	}
	return idle
}

// measureIdleHandover hands the idle connections over, beside a few
// connections under load, and logs how long it took and how long the
// active ones stalled.
func (fg *figuresTest) measureIdleHandover(t *testing.T, idleN int) {
	t.Helper()
	// A few connections under load beside the idle ones: how long they
	// stall while the idle ones move.
	const active = 4
	stall := startLoad(t, fg.addr, active)
	testutil.WaitFor(t, "the active connections to go through the gateway", 10*time.Second, func() bool {
		return stall.requests.Load() >= 2*active
	})
	next := startChild(t, fg.path, fg.probeAddr, 0)
	took := next.tookOver(t)
	fg.gw.waitExit(t, "the old gateway")
	worst := stall.stop()
	t.Logf("FIGURE idle: %d idle connections handed over in %s (old process, first message to \"serving\"); new process: %s from its start to all adopted, of which receiving %s, adopting %s, CPU time (after its start) %s; %d active connections beside them stalled at most %s",
		idleN, handoverDuration(t, fg.gw), took["duration"], took["receive"], took["adopt"], took["cpu"], active, worst)
	if took["conns-adopted"] != float64(idleN+active) || stall.failed.Load() != 0 {
		t.Errorf("adopted %v of %d connections; %d requests failed", took["conns-adopted"], idleN+active, stall.failed.Load())
	}
	fg.gw = next
}

// checkIdleAfter wants an answer on every idle connection after the
// handover, and closes it.
func (fg *figuresTest) checkIdleAfter(t *testing.T, idle []net.Conn) {
	t.Helper()
	for i, c := range idle {
		if err := testutil.RoundTrip(c, "j"); err != nil {
			t.Fatalf("idle %d after the handover: %v", i, err)
		}
		c.Close()
	}
}

// measureLoadHandovers runs 20 handovers under 64 connections under
// request/response load, each connection's longest round trip its longest
// stall, beside a connect loop, and logs the figures.
func (fg *figuresTest) measureLoadHandovers(t *testing.T) {
	t.Helper()
	const loadN, rounds = 64, 20
	accepted := fg.echo.Accepted()
	rr := startLoad(t, fg.addr, loadN)
	loop := startConnectLoop(t, 2, fg.probeAddr, echoExchange)
	testutil.WaitFor(t, "the load to reach the member", 10*time.Second, func() bool {
		return fg.echo.Accepted() == accepted+loadN
	})
	rr.resetWorst()
	var total time.Duration
	for round := range rounds {
		before := rr.requests.Load()
		next := fg.gw.handOver(t, fg.path, fg.probeAddr, round)
		total += handoverDuration(t, fg.gw)
		fg.gw = next
		testutil.WaitFor(t, "requests through the new gateway", 20*time.Second, func() bool {
			return rr.requests.Load() > before+loadN
		})
	}
	worst := rr.stop()
	loop.end()
	t.Logf("FIGURE load: %d handovers under %d connections: %d requests, %d errors, %d reconnects to the member, %d of %d connects failed; longest round trip %s; mean handover %s",
		rounds, loadN, rr.requests.Load(), rr.failed.Load(), fg.echo.Accepted()-accepted-loadN, loop.failed.Load(), loop.failed.Load()+loop.ok.Load(), worst, total/rounds)
	if rr.failed.Load() != 0 || loop.failed.Load() != 0 || fg.echo.Accepted() != accepted+loadN {
		t.Error("errors, reconnects or refused connects")
	}
}

// load is connections under request/response load, each timing its round
// trips: the longest is the longest time a connection saw no progress.
type load struct {
	requests, failed atomic.Int64
	mu               sync.Mutex
	worst            time.Duration
	done             chan struct{}
	wg               sync.WaitGroup
}

// startLoad opens n connections to addr, an echo, and runs requests on
// each until stop.
func startLoad(t *testing.T, addr string, n int) *load {
	t.Helper()
	l := &load{done: make(chan struct{})}
	for i := range n {
		c := testutil.Dial(t, addr)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close()
			msg := fmt.Sprintf("conn %d %0100d\n", i, 0)
			for {
				select {
				case <-l.done:
					return
				default:
				}
				start := time.Now()
				if err := testutil.RoundTrip(c, msg); err != nil {
					l.failed.Add(1)
					return
				}
				l.requests.Add(1)
				l.mu.Lock()
				l.worst = max(l.worst, time.Since(start))
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// resetWorst forgets the round trips so far.
func (l *load) resetWorst() {
	l.mu.Lock()
	l.worst = 0
	l.mu.Unlock()
}

// stop ends the load and returns the longest round trip.
func (l *load) stop() time.Duration {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.worst
}
