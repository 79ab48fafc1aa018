//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// connectLoop dials addr over and over from a few goroutines, each
// connect followed by an exchange (an echo through a listener, a GET of
// /healthz from the admin server), and counts the failures: a refused or
// reset connect is one.
type connectLoop struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startConnectLoop starts n goroutines exchanging with addr by exchange.
func startConnectLoop(t *testing.T, n int, addr string, exchange func(net.Conn, int) error) *connectLoop {
	t.Helper()
	l := &connectLoop{stop: make(chan struct{})}
	for w := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				err := l.once(addr, w*1_000_000+i, exchange)
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == nil {
						l.firstErr = err
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

// once is one connect and exchange.
func (l *connectLoop) once(addr string, i int, exchange func(net.Conn, int) error) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect %d: %w", i, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := exchange(c, i); err != nil {
		return fmt.Errorf("exchange %d: %w", i, err)
	}
	return nil
}

// end stops the loop and waits for it.
func (l *connectLoop) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// check stops the loop and fails t on any failure, or on no success.
func (l *connectLoop) check(t *testing.T, what string) {
	t.Helper()
	l.end()
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%s: %d of %d connects failed; first: %v", what, n, n+l.ok.Load(), l.firstErr)
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no connect succeeded", what)
	}
}

// echoExchange sends a line and wants it back.
func echoExchange(c net.Conn, i int) error {
	return testutil.RoundTrip(c, fmt.Sprintf("ping %d\n", i))
}

// healthzExchange GETs /healthz and wants a 200.
func healthzExchange(c net.Conn, _ int) error {
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		return fmt.Errorf("answer %q", firstLineOf(string(b)))
	}
	return nil
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// upgradeConfig writes a config with a listener, the admin server and an
// upgrade socket; it returns the file, the listener's and the admin's
// addresses and the socket's path.
func upgradeConfig(t *testing.T, backend string) (path, addr, adminAddr, sock string) {
	t.Helper()
	addr, adminAddr = testutil.ListenAddr(t), testutil.ListenAddr(t)
	sock = filepath.Join(t.TempDir(), "upgrade.sock")
	path = writeConfig(t, addr, backend, fmt.Sprintf("admin-addr: %s\nupgrade-socket: %s\n", adminAddr, sock))
	return path, addr, adminAddr, sock
}

// waitExit waits for c to exit, and fails t unless it exited cleanly.
func (c *child) waitExit(t *testing.T, what string) {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Fatalf("%s exited with %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit", what)
	}
}

// tookOver waits until c took over from the running gateway and listens
// on its upgrade socket for the next handover, and returns the fields of
// its summary line.
func (c *child) tookOver(t *testing.T) map[string]any {
	t.Helper()
	testutil.WaitFor(t, "the new gateway to take over", 20*time.Second, func() bool {
		return len(c.logLines("took over from the running gateway")) == 1 && len(c.logLines("gateway started")) == 1
	})
	var f map[string]any
	if err := json.Unmarshal([]byte(c.logLines("took over from the running gateway")[0]), &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// startUpgradable starts a child gateway on path, serving addr, with env
// added to its environment, and waits until it listens on its upgrade
// socket sock.
func startUpgradable(t *testing.T, path, addr, sock string, env ...string) *child {
	t.Helper()
	gw := startChild(t, path, addr, 0, env...)
	testutil.WaitFor(t, "the upgrade socket", 10*time.Second, func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	return gw
}

// TestUpgradeListenerHandover runs five handovers in a row, each a new
// gateway process started on the same config: each takes the listening
// sockets (the listener's and the admin server's) from the one before,
// which drains and exits, and connect loops on both addresses see no
// refused or reset connect and no failed exchange throughout.
func TestUpgradeListenerHandover(t *testing.T) {
	echo := testutil.Echo(t)
	path, addr, adminAddr, sock := upgradeConfig(t, echo.Addr)
	gw := startUpgradable(t, path, addr, sock)
	loop := startConnectLoop(t, 4, addr, echoExchange)
	admin := startConnectLoop(t, 1, adminAddr, healthzExchange)
	const handovers = 5
	for i := range handovers {
		before := loop.ok.Load()
		next := startChild(t, path, addr, 0)
		next.tookOver(t)
		gw.waitExit(t, fmt.Sprintf("the old gateway of handover %d", i+1))
		if lines := gw.logLines("handed over to the new gateway"); len(lines) != 1 {
			t.Fatalf("handover %d: the old gateway did not log the handover:\n%s", i+1, gw.logs.String())
		}
		line := next.logLines("took over from the running gateway")[0]
		if !strings.Contains(line, `"listeners":1`) || !strings.Contains(line, `"admin":true`) {
			t.Fatalf("handover %d: summary %s, want 1 listener and the admin server", i+1, line)
		}
		gw = next
		testutil.WaitFor(t, "the new gateway to serve", 10*time.Second, func() bool {
			return loop.ok.Load() > before+10
		})
	}
	_, metrics := testutil.Get(t, adminAddr, "/metrics")
	for _, want := range []string{
		`etcd_gateway_upgrade_listeners_passed_total{direction="in",via="handover"} 2`,
		`etcd_gateway_upgrade_last_handover_seconds `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics of the last gateway lacks %s", want)
		}
	}
	loop.check(t, "listener")
	admin.check(t, "admin server")
	t.Logf("%d listener and %d admin connects through %d handovers", loop.ok.Load(), admin.ok.Load(), handovers)
	if err := gw.stop(t); err != nil {
		t.Fatalf("last gateway exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the last gateway left its upgrade socket behind: %v", err)
	}
}

// TestUpgradeRefusesOtherVersion checks that a gateway refuses a
// handover in a protocol version it doesn't speak, and serves on.
func TestUpgradeRefusesOtherVersion(t *testing.T) {
	echo := testutil.Echo(t)
	path, addr, adminAddr, sock := upgradeConfig(t, echo.Addr)
	gw := startUpgradable(t, path, addr, sock)
	c, err := net.Dial("unixpacket", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"version":99,"op":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), `"op":"error"`) || !strings.Contains(string(buf[:n]), "version 99") {
		t.Fatalf("answer to version 99: %q, %v", buf[:n], err)
	}
	conn := testutil.Dial(t, addr)
	if err := testutil.RoundTrip(conn, "still here"); err != nil {
		t.Fatal(err)
	}
	if code, _ := testutil.Get(t, adminAddr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	if err := gw.stop(t); err != nil {
		t.Fatal(err)
	}
}
