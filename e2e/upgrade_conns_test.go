//go:build linux

package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// The figures; the test takes about 40 s under -race on two
// shared cores.
const (
	loadConns   = 500
	idleConns   = 50
	bulkConns   = 4
	halfConns   = 3
	connsRounds = 20
)

// requestLoop sends numbered requests on c and checks each echo until stop.
func requestLoop(c net.Conn, id int, stop <-chan struct{}, count *atomic.Int64) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := testutil.RoundTrip(c, fmt.Sprintf("conn %d request %d %s\n", id, i, strings.Repeat("x", 100))); err != nil {
			return fmt.Errorf("conn %d request %d: %w", id, i, err)
		}
		count.Add(1)
	}
}

// halfBackend reads a connection to EOF, then waits for release and
// answers with the number of bytes it read: a connection that stays
// half-closed for as long as the test wants.
func halfBackend(t *testing.T, release <-chan struct{}) *testutil.Server {
	return testutil.Serve(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		<-release
		fmt.Fprintf(c, "read %d", n)
	})
}

// TestUpgradeConnectionsByteExact hands over, twenty times in a row,
// connections under request/response load, idle ones, bulk both ways and
// half-closed ones, while a connect loop runs on another listener: every
// stream is byte-exact, no request fails, the members never see a new
// connection from the moved ones, and no connect is refused or reset.
func TestUpgradeConnectionsByteExact(t *testing.T) {
	echo, loopEcho := testutil.Echo(t), testutil.Echo(t)
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	half := halfBackend(t, release)
	addr, halfAddr, loopAddr := testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "upgrade.sock")
	path := filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`log-level: info
log-format: json
shutdown-timeout: 10s
upgrade-socket: %s
health-check: {type: none}
listeners:
  - {name: main, listen-addr: %q, endpoints: [%q]}
  - {name: half, listen-addr: %q, endpoints: [%q]}
  - {name: loop, listen-addr: %q, endpoints: [%q]}
`, sock, addr, echo.Addr, halfAddr, half.Addr, loopAddr, loopEcho.Addr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// startChild's readiness probe goes to the loop listener: the main
	// member counts only the test's connections.
	gw := startUpgradable(t, path, loopAddr, sock)
	baseline := gw.fds(t) // before any connection: what the last gateway must come back to

	stop := make(chan struct{})
	var requests atomic.Int64
	errs := make(chan error, loadConns+bulkConns)
	var wg sync.WaitGroup
	var clients []net.Conn // every connection but the idle and half-closed ones
	for i := range loadConns {
		c := testutil.Dial(t, addr)
		clients = append(clients, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- requestLoop(c, i, stop, &requests)
		}()
	}
	idle := make([]net.Conn, idleConns)
	for i := range idle {
		idle[i] = testutil.Dial(t, addr)
		if err := testutil.RoundTrip(idle[i], "idle"); err != nil {
			t.Fatal(err)
		}
	}
	for range bulkConns {
		c := testutil.Dial(t, addr)
		clients = append(clients, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := testutil.StreamEcho(c, stop, 30*time.Second)
			if err != nil {
				err = fmt.Errorf("bulk: %w", err)
			}
			errs <- err
		}()
	}
	halves := make([]net.Conn, halfConns)
	for i := range halves {
		halves[i] = testutil.Dial(t, halfAddr)
		fmt.Fprintf(halves[i], "half %d", i)
		if err := halves[i].(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	loop := startConnectLoop(t, 2, loopAddr, echoExchange)
	persistent := int64(loadConns + idleConns + bulkConns)
	testutil.WaitFor(t, "every connection to reach the members", 20*time.Second, func() bool {
		return echo.Accepted() == persistent && half.Accepted() == halfConns
	})

	for round := range connsRounds {
		before := requests.Load()
		next := startChild(t, path, loopAddr, 0)
		next.tookOver(t)
		gw.waitExit(t, fmt.Sprintf("the old gateway of handover %d", round+1))
		t.Logf("handover %d: %s\n%s", round+1, next.logLines("took over from the running gateway")[0], strings.Join(gw.logLines("handed over to the new gateway"), "\n"))
		gw = next
		testutil.WaitFor(t, "requests to flow through the new gateway", 20*time.Second, func() bool {
			return requests.Load() > before+int64(loadConns)
		})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, c := range idle {
		if err := testutil.RoundTrip(c, fmt.Sprintf("still idle %d", i)); err != nil {
			t.Errorf("idle connection %d: %v", i, err)
		}
	}
	close(release)
	for i, c := range halves {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if want := fmt.Sprintf("read %d", len(fmt.Sprintf("half %d", i))); err != nil || string(b) != want {
			t.Errorf("half-closed connection %d: %q, %v; want %q", i, b, err, want)
		}
	}
	loop.check(t, "connect loop")
	if got := echo.Accepted(); got != persistent {
		t.Errorf("the member accepted %d connections, want %d: moved connections were dialled again", got, persistent)
	}
	if got := half.Accepted(); got != halfConns {
		t.Errorf("the half-close member accepted %d connections, want %d", got, halfConns)
	}
	t.Logf("%d requests, %d connects through %d handovers", requests.Load(), loop.ok.Load(), connsRounds)
	noDescriptorLeft(t, gw, baseline, slices.Concat(clients, idle, halves))
	if err := gw.stop(t); err != nil {
		t.Fatalf("last gateway exit after SIGTERM: %v", err)
	}
}

// noDescriptorLeft closes conns and checks that gw, which adopted them
// through handovers, closes every descriptor it got for them: it comes
// back to the descriptors a gateway that never adopted any held at start
// (baseline), give or take the few that are not connections (the splice
// pipes its loops keep for reuse, a listener's second descriptor): a
// leak per connection would be hundreds.
func noDescriptorLeft(t *testing.T, gw *child, baseline int, conns []net.Conn) {
	t.Helper()
	held := gw.fds(t)
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	const others = 20
	for gw.fds(t) > baseline+others {
		if time.Now().After(deadline) {
			out, _ := exec.Command("ss", "-tanpe").Output()
			var mine []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, fmt.Sprintf("pid=%d,", gw.cmd.Process.Pid)) {
					mine = append(mine, line)
				}
			}
			t.Fatalf("the last gateway holds %d descriptors once the %d connections it adopted closed, the first held %d before any; its sockets:\n%s",
				gw.fds(t), len(conns), baseline, strings.Join(mine, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the last gateway held %d descriptors with %d connections, %d once they closed; the first held %d before any", held, len(conns), gw.fds(t), baseline)
}
