//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// killConns is more than two batches of connections (125 a batch), so
// that a process stopped after the first batch has passed some and not
// others.
const killConns = 260

// killGateway is a config of a gateway for the kill tests: the listener
// under test, a probe listener of its own member (so that the readiness
// probes of child gateways don't count as the main member's connections),
// the admin server and the upgrade socket; no health checks (a member slow
// to answer under the test's load must not be marked down).
type killGateway struct{ path, addr, probe, admin, sock string }

func killConfig(t *testing.T, backend string) killGateway {
	t.Helper()
	g := killGateway{addr: testutil.ListenAddr(t), probe: testutil.ListenAddr(t), admin: testutil.ListenAddr(t)}
	dir := t.TempDir()
	g.sock, g.path = filepath.Join(dir, "upgrade.sock"), filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`log-level: info
log-format: json
shutdown-timeout: 2s
admin-addr: %s
upgrade-socket: %s
health-check: {type: none}
listeners:
  - {name: main, listen-addr: %q, endpoints: [%q]}
  - {name: probe, listen-addr: %q, endpoints: [%q]}
`, g.admin, g.sock, g.addr, backend, g.probe, testutil.Echo(t).Addr)
	if err := os.WriteFile(g.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// start starts a child gateway on g, with env, and waits until it
// accepts on the probe listener.
func (g killGateway) start(t *testing.T, env ...string) *child {
	t.Helper()
	return startChild(t, g.path, g.probe, 0, env...)
}

// failpointEnv is the handover's failpoint (handover.HookEnv, in builds
// with the failpoints tag): a gateway whose environment names a step of
// the handover in it stops there and says so.
const failpointEnv = "ETCD_GATEWAY_TEST_UPGRADE_STOP"

// startStopping starts a child gateway on g that stops at step of its
// next handover (failpointEnv).
func (g killGateway) startStopping(t *testing.T, step string) *child {
	t.Helper()
	return g.start(t, failpointEnv+"="+step)
}

// waitUpgradable waits until c listens on its upgrade socket (after it
// took over, if it did).
func (c *child) waitUpgradable(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, "the gateway to listen on its upgrade socket", 20*time.Second, func() bool {
		return len(c.logLines("gateway started")) == 1
	})
}

// killAt waits until c stopped at step, then kills it.
func (c *child) killAt(t *testing.T, step string) {
	t.Helper()
	c.waitStopped(t, step)
	c.kill(t)
}

// waitStopped waits until c says it stopped at step.
func (c *child) waitStopped(t *testing.T, step string) {
	t.Helper()
	testutil.WaitFor(t, "the gateway to stop at "+step, 20*time.Second, func() bool {
		return len(c.logLines("upgrade test hook: stopped at "+step)) == 1
	})
}

// kill kills c with SIGKILL and waits for it to exit; c must not have
// exited by itself.
func (c *child) kill(t *testing.T) {
	t.Helper()
	select {
	case err := <-c.done:
		t.Fatalf("the gateway to kill exited by itself: %v", err)
	default:
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		c.done <- err
		if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("the gateway ended with %v, not by SIGKILL", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the killed gateway did not exit")
	}
}

// loadedConns opens n connections to addr, each running requestLoop until
// stop; wait returns their errors.
func loadedConns(t *testing.T, addr string, n int, stop <-chan struct{}, requests *atomic.Int64) (wait func() []error) {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		c := testutil.Dial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = requestLoop(c, i, stop, requests)
		}()
	}
	return func() []error { wg.Wait(); return errs }
}

// TestUpgradeNewProcessKilled kills (SIGKILL) a real new gateway at three
// steps of its handover: once it took the listening sockets, once it took
// the first of several batches of connections, and just before it says
// it serves (it took them all). Each time the old gateway accepts again
// and forwards every connection on: no request on any of them fails, the
// member sees no new connection, and the connect loop sees no refused or
// reset connect. A last handover, not stopped, then moves them all.
func TestUpgradeNewProcessKilled(t *testing.T) {
	echo := testutil.Echo(t)
	g := killConfig(t, echo.Addr)
	gw := g.start(t)
	gw.waitUpgradable(t)
	stop := make(chan struct{})
	var requests atomic.Int64
	wait := loadedConns(t, g.addr, killConns, stop, &requests)
	testutil.WaitFor(t, "the connections to reach the member", 20*time.Second, func() bool {
		return echo.Accepted() == killConns
	})
	loop := startConnectLoop(t, 2, g.addr, echoExchange)
	for _, st := range []struct{ step, wantLog string }{
		{"new:sockets", "failed before it was ready"},
		{"new:conns", "failed mid-handover"},
		{"new:serving", "failed mid-handover"},
	} {
		before, seen, held := requests.Load(), len(gw.logLines(st.wantLog)), gw.fds(t)
		g.startStopping(t, st.step).killAt(t, st.step)
		testutil.WaitFor(t, "the old gateway to see the new one die at "+st.step, 20*time.Second, func() bool {
			return len(gw.logLines(st.wantLog)) > seen
		})
		testutil.WaitFor(t, "requests through the old gateway", 20*time.Second, func() bool {
			return requests.Load() > before+killConns
		})
		// What it took back is what it had: the descriptors it sent, not
		// copies (the connect loop's few come and go, and the loops'
		// spare splice pipes; a leak would be hundreds).
		testutil.WaitFor(t, "the old gateway's descriptors to be what they were", 20*time.Second, func() bool {
			return gw.fds(t) <= held+16
		})
	}
	next := g.start(t)
	if got := next.tookOver(t)["conns-adopted"].(float64); got < killConns {
		t.Errorf("the last handover moved %v connections, want %d and the connect loop's", got, killConns)
	}
	gw.waitExit(t, "the old gateway")
	before := requests.Load()
	testutil.WaitFor(t, "requests through the new gateway", 20*time.Second, func() bool {
		return requests.Load() > before+killConns
	})
	close(stop)
	for _, err := range wait() {
		if err != nil {
			t.Error(err)
		}
	}
	loop.check(t, "connect loop")
	if got, want := echo.Accepted(), killConns+loop.ok.Load(); got != want {
		t.Errorf("the member accepted %d connections, want %d (the loaded ones and the connect loop's): connections were dialled again", got, want)
	}
	if err := next.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeOldProcessKilled kills (SIGKILL) a real old gateway at two
// steps of a handover. Killed once it heard the new one is ready (before
// it paused), the new gateway serves the sockets it took. Killed after it
// passed its first batch of connections, the new gateway serves: the
// connections of that batch go on, byte-exact, and so do the connects
// that waited in the backlog meanwhile; the ones the old process still
// held die with it.
func TestUpgradeOldProcessKilled(t *testing.T) {
	g := killConfig(t, testutil.Echo(t).Addr)
	first := g.startStopping(t, "old:ready")
	first.waitUpgradable(t)
	second := g.startStopping(t, "old:conns")
	first.killAt(t, "old:ready")
	testutil.WaitFor(t, "the new gateway to see the old one die", 20*time.Second, func() bool {
		return len(second.logLines("the old gateway failed mid-handover")) == 1
	})
	loop := startConnectLoop(t, 2, g.addr, echoExchange)
	testutil.WaitFor(t, "the new gateway to serve", 20*time.Second, func() bool { return loop.ok.Load() > 10 })
	loop.check(t, "connect loop after the old gateway died")
	if code, _ := testutil.Get(t, g.admin, "/healthz"); code != 200 {
		t.Fatalf("/healthz of the new gateway: %d", code)
	}

	// The second gateway, now serving, is killed as it hands over.
	second.waitUpgradable(t)
	conns := make([]net.Conn, killConns)
	for i := range conns {
		conns[i] = testutil.Dial(t, g.addr)
		if err := testutil.RoundTrip(conns[i], fmt.Sprintf("before %d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	third := g.start(t)
	second.waitStopped(t, "old:conns")
	queued := make([]net.Conn, 3)
	for i := range queued {
		queued[i] = testutil.Dial(t, g.addr) // the listener is paused: in the backlog
	}
	second.kill(t)
	adopted := third.tookOver(t)["conns-adopted"].(float64)
	if adopted < 1 || adopted >= killConns {
		t.Fatalf("the new gateway adopted %v connections, want the first batch only", adopted)
	}
	alive := 0
	for i, c := range conns {
		if testutil.RoundTrip(c, fmt.Sprintf("after %d\n", i)) == nil {
			alive++
		}
	}
	if alive != int(adopted) {
		t.Errorf("%d connections alive after the old gateway died, want the %v it passed", alive, adopted)
	}
	for i, c := range queued {
		if err := testutil.RoundTrip(c, fmt.Sprintf("queued %d\n", i)); err != nil {
			t.Errorf("a connect queued while the old gateway stopped: %v", err)
		}
	}
	t.Logf("old gateway killed after its first batch: %d of %d connections passed and alive", alive, killConns)
	if err := third.stop(t); err != nil {
		t.Fatal(err)
	}
}
