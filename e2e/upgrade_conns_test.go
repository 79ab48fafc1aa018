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
	ct := &connsTest{echo: testutil.Echo(t), loopEcho: testutil.Echo(t), release: make(chan struct{})}
	defer ct.releaseHalves()
	ct.startGateway(t)
	ct.openLoadAndIdle(t)
	ct.openBulkAndHalves(t)
	ct.waitConnected(t)
	ct.handOverRounds(t)
	ct.checkStreams(t)
	ct.checkHalves(t)
	ct.checkMembers(t)
	noDescriptorLeft(t, ct.gw, ct.baseline, slices.Concat(ct.clients, ct.idle, ct.halves))
	if err := ct.gw.stop(t); err != nil {
		t.Fatalf("last gateway exit after SIGTERM: %v", err)
	}
}

// connsTest is TestUpgradeConnectionsByteExact's gateway, members and
// connections.
type connsTest struct {
	echo, loopEcho, half     *testutil.Server
	release                  chan struct{} // lets the half-close member answer
	addr, halfAddr, loopAddr string
	path                     string
	gw                       *child
	baseline                 int // the first gateway's descriptors before any connection
	stop                     chan struct{}
	requests                 atomic.Int64
	errs                     chan error
	wg                       sync.WaitGroup
	clients                  []net.Conn // every connection but the idle and half-closed ones
	idle, halves             []net.Conn
	loop                     *connectLoop
	persistent               int64
}

// releaseHalves lets the half-close member answer, unless it already may.
func (ct *connsTest) releaseHalves() {
	select {
	case <-ct.release:
	default:
		close(ct.release)
	}
}

// startGateway starts the half-close member and the first gateway, with
// the main, half and loop listeners, and counts its descriptors.
func (ct *connsTest) startGateway(t *testing.T) {
	t.Helper()
	ct.half = halfBackend(t, ct.release)
	ct.addr, ct.halfAddr, ct.loopAddr = testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "upgrade.sock")
	ct.path = filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`log-level: info
log-format: json
shutdown-timeout: 10s
upgrade-socket: %s
health-check: {type: none}
listeners:
  - {name: main, listen-addr: %q, endpoints: [%q]}
  - {name: half, listen-addr: %q, endpoints: [%q]}
  - {name: loop, listen-addr: %q, endpoints: [%q]}
`, sock, ct.addr, ct.echo.Addr, ct.halfAddr, ct.half.Addr, ct.loopAddr, ct.loopEcho.Addr)
	if err := os.WriteFile(ct.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// startChild's readiness probe goes to the loop listener: the main
	// member counts only the test's connections.
	ct.gw = startUpgradable(t, ct.path, ct.loopAddr, sock)
	ct.baseline = ct.gw.fds(t) // before any connection: what the last gateway must come back to
}

// openLoadAndIdle opens the connections under request/response load and
// the idle ones, each idle one after one exchange.
func (ct *connsTest) openLoadAndIdle(t *testing.T) {
	t.Helper()
	ct.stop = make(chan struct{})
	ct.errs = make(chan error, loadConns+bulkConns)
	for i := range loadConns {
		c := testutil.Dial(t, ct.addr)
		ct.clients = append(ct.clients, c)
		ct.wg.Add(1)
		go func() {
			defer ct.wg.Done()
			ct.errs <- requestLoop(c, i, ct.stop, &ct.requests)
		}()
	}
	ct.idle = make([]net.Conn, idleConns)
	for i := range ct.idle {
		ct.idle[i] = testutil.Dial(t, ct.addr)
		if err := testutil.RoundTrip(ct.idle[i], "idle"); err != nil {
			t.Fatal(err)
		}
	}
}

// openBulkAndHalves opens the bulk connections, streaming both ways, and
// the half-closed ones, each after a message.
func (ct *connsTest) openBulkAndHalves(t *testing.T) {
	t.Helper()
	for range bulkConns {
		c := testutil.Dial(t, ct.addr)
		ct.clients = append(ct.clients, c)
		ct.wg.Add(1)
		go func() {
			defer ct.wg.Done()
			err := testutil.StreamEcho(c, ct.stop, 30*time.Second)
			if err != nil {
				err = fmt.Errorf("bulk: %w", err)
			}
			ct.errs <- err
		}()
	}
	ct.halves = make([]net.Conn, halfConns)
	for i := range ct.halves {
		ct.halves[i] = testutil.Dial(t, ct.halfAddr)
		fmt.Fprintf(ct.halves[i], "half %d", i)
		if err := ct.halves[i].(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitConnected starts the connect loop and waits until every connection
// reached its member.
func (ct *connsTest) waitConnected(t *testing.T) {
	t.Helper()
	ct.loop = startConnectLoop(t, 2, ct.loopAddr, echoExchange)
	ct.persistent = int64(loadConns + idleConns + bulkConns)
	testutil.WaitFor(t, "every connection to reach the members", 20*time.Second, func() bool {
		return ct.echo.Accepted() == ct.persistent && ct.half.Accepted() == halfConns
	})
}

// handOverRounds runs the handovers, each once requests flow through the
// gateway before.
func (ct *connsTest) handOverRounds(t *testing.T) {
	t.Helper()
	for round := range connsRounds {
		before := ct.requests.Load()
		next := ct.gw.handOver(t, ct.path, ct.loopAddr, round)
		t.Logf("handover %d: %s\n%s", round+1, next.logLines("took over from the running gateway")[0], strings.Join(ct.gw.logLines("handed over to the new gateway"), "\n"))
		ct.gw = next
		testutil.WaitFor(t, "requests to flow through the new gateway", 20*time.Second, func() bool {
			return ct.requests.Load() > before+int64(loadConns)
		})
	}
}

// checkStreams stops the load and bulk connections, wants no error from
// them, and an answer on every idle connection.
func (ct *connsTest) checkStreams(t *testing.T) {
	t.Helper()
	close(ct.stop)
	ct.wg.Wait()
	close(ct.errs)
	for err := range ct.errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, c := range ct.idle {
		if err := testutil.RoundTrip(c, fmt.Sprintf("still idle %d", i)); err != nil {
			t.Errorf("idle connection %d: %v", i, err)
		}
	}
}

// checkHalves lets the half-close member answer and wants on each
// half-closed connection the count of the bytes it sent.
func (ct *connsTest) checkHalves(t *testing.T) {
	t.Helper()
	close(ct.release)
	for i, c := range ct.halves {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if want := fmt.Sprintf("read %d", len(fmt.Sprintf("half %d", i))); err != nil || string(b) != want {
			t.Errorf("half-closed connection %d: %q, %v; want %q", i, b, err, want)
		}
	}
}

// checkMembers wants no failed connect and no connection dialled again to
// a member.
func (ct *connsTest) checkMembers(t *testing.T) {
	t.Helper()
	ct.loop.check(t, "connect loop")
	if got := ct.echo.Accepted(); got != ct.persistent {
		t.Errorf("the member accepted %d connections, want %d: moved connections were dialled again", got, ct.persistent)
	}
	if got := ct.half.Accepted(); got != halfConns {
		t.Errorf("the half-close member accepted %d connections, want %d", got, halfConns)
	}
	t.Logf("%d requests, %d connects through %d handovers", ct.requests.Load(), ct.loop.ok.Load(), connsRounds)
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
