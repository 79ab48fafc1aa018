//go:build linux

package e2e

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestAcceptAtOpenFileLimit runs the gateway with 64 descriptors and opens
// more connections than it can hold: the gateway stops accepting while
// only its reserve of descriptors is free, says so in the log and in
// /metrics, and its admin server still answers /healthz and /metrics. It
// doesn't end the process nor blame the member, and serves again once the
// clients leave.
func TestAcceptAtOpenFileLimit(t *testing.T) {
	echo := testutil.Echo(t)
	addr, adminAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	gw := startChild(t, writeConfig(t, addr, echo.Addr, "admin-addr: "+adminAddr+"\n"), addr, 64)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	conns = dialUpTo(t, addr, 60)
	limitCutsIn(t, conns)
	testutil.WaitFor(t, "the pause in the log", 10*time.Second, func() bool {
		return len(gw.logLines("accepting paused")) > 0
	})
	adminAnswersAtLimit(t, adminAddr)
	// Free the descriptors: new clients are served again.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	servesAgain(t, addr, adminAddr)
	if lines := gw.logLines("endpoint deactivated"); len(lines) > 0 {
		t.Fatalf("running out of descriptors marked the member down: %s", lines[0])
	}
	if err := gw.stop(t); err != nil {
		t.Fatalf("gateway exit after SIGTERM: %v", err)
	}
}

// dialUpTo opens up to n connections to addr, fewer if a connect fails
// (the backlog is full too).
func dialUpTo(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break // the backlog is full too
		}
		conns = append(conns, c)
	}
	return conns
}

// limitCutsIn asks each connection for an echo and checks that some, not
// all, get one: those past the limit get none.
func limitCutsIn(t *testing.T, conns []net.Conn) {
	t.Helper()
	// One deadline for all, so a busy machine has 3 s to answer the ones
	// accepted.
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range conns {
		_ = c.SetDeadline(deadline)
		_, _ = c.Write([]byte("x"))
	}
	answered := 0
	for _, c := range conns {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			answered++
		}
	}
	if answered == 0 || answered == len(conns) {
		t.Fatalf("%d of %d connections answered; want the limit to cut in part way", answered, len(conns))
	}
}

// adminAnswersAtLimit checks that the admin server answers /healthz, and
// /metrics with the pause, while the gateway holds every client it can.
func adminAnswersAtLimit(t *testing.T, adminAddr string) {
	t.Helper()
	for range 5 {
		if code, body := testutil.Get(t, adminAddr, "/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz at the limit: %d %s", code, body)
		}
		code, body := testutil.Get(t, adminAddr, "/metrics")
		if code != http.StatusOK || !strings.Contains(body, "etcd_gateway_accept_paused 1") {
			t.Fatalf("/metrics at the limit: %d, want 200 and etcd_gateway_accept_paused 1:\n%s", code, body)
		}
	}
}

// servesAgain waits, once the clients left, for a new client to be served
// at addr, and checks that /metrics no longer shows the pause.
func servesAgain(t *testing.T, addr, adminAddr string) {
	t.Helper()
	testutil.WaitFor(t, "the gateway to serve again", 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		return testutil.RoundTrip(c, "back") == nil
	})
	if _, body := testutil.Get(t, adminAddr, "/metrics"); !strings.Contains(body, "etcd_gateway_accept_paused 0") {
		t.Fatalf("/metrics after the clients left: want etcd_gateway_accept_paused 0:\n%s", body)
	}
}

// TestBadConfigFilesKeepServing runs the gateway as an unprivileged user
// (root reads any file whatever its mode) and replaces its config file with
// an unreadable one, 10 MB of garbage, and a directory: each reload is
// rejected with an error naming the file, and the gateway keeps serving;
// a good file is then applied.
func TestBadConfigFilesKeepServing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the gateway as another user")
	}
	echo := testutil.Echo(t)
	addr := testutil.ListenAddr(t)
	path := filepath.Join(worldWritableDir(t), "gw.yaml")
	good := fmt.Sprintf("log-level: debug\nlog-format: json\nlisteners:\n  - name: main\n    listen-addr: %s\n    endpoints: [%s]\n", addr, echo.Addr)
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startAsNobody(t, path, addr)
	// The watcher's first read must be over before the file changes.
	gw.waitWatched(t)

	// Unreadable: a mode change is no content change, so SIGHUP asks.
	if err := os.Chmod(path, 0o000); err != nil {
		t.Fatal(err)
	}
	gw.reload()
	expectRejected(t, gw, 1, path, addr, "an unreadable file", "permission denied")
	replaceWithGarbage(t, path)
	expectRejected(t, gw, 2, path, addr, "10 MB of garbage", "larger than")
	replaceWithDirectory(t, path)
	expectRejected(t, gw, 3, path, addr, "a directory", "is a directory")
	moved := replaceWithMoved(t, path, good, addr)
	servesAtMoved(t, gw, moved)
}

// worldWritableDir makes a directory, removed at the end of the test, that
// the gateway's unprivileged user can write its files in.
func worldWritableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "etcd-gateway-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startAsNobody starts the gateway on path as user and group nobody, and
// waits until addr accepts.
func startAsNobody(t *testing.T, path, addr string) *child {
	t.Helper()
	cmd := gatewayCommand(setup{}, "start", "--config", path)
	const nobody = 65534
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return launch(t, cmd, "listen", dialable(addr))
}

// expectRejected waits for the gateway's nth rejected reload, of what,
// checks that the rejection names path and want, and that addr still
// serves.
func expectRejected(t *testing.T, gw *child, n int, path, addr, what, want string) {
	t.Helper()
	line := gw.rejection(t, what, n)
	if !strings.Contains(line, path) || !strings.Contains(line, want) {
		t.Fatalf("%s: rejection %s does not name the file and %q", what, line, want)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s: the gateway stopped serving: %v", what, err)
	}
	defer c.Close()
	if err := testutil.RoundTrip(c, what); err != nil {
		t.Fatalf("%s: the gateway stopped serving: %v", what, err)
	}
}

// replaceWithGarbage replaces the file at path, by a rename, with 10 MB
// of random bytes.
func replaceWithGarbage(t *testing.T, path string) {
	t.Helper()
	garbage := make([]byte, 10<<20)
	_, _ = rand.Read(garbage)
	if err := os.WriteFile(path+".tmp", garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// replaceWithDirectory replaces the file at path with a directory.
func replaceWithDirectory(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// replaceWithMoved replaces the directory at path with the good config,
// its listener moved from addr to a new address, which it returns.
func replaceWithMoved(t *testing.T, path, good, addr string) string {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	moved := testutil.ListenAddr(t)
	if err := os.WriteFile(path, []byte(strings.Replace(good, addr, moved, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return moved
}

// servesAtMoved waits for the good file to be applied and checks that a
// client is served at the listener's new address, moved.
func servesAtMoved(t *testing.T, gw *child, moved string) {
	t.Helper()
	testutil.WaitFor(t, "the good file to be applied", 10*time.Second, func() bool {
		return len(gw.logLines("config reloaded")) == 1
	})
	c, err := net.Dial("tcp", moved)
	if err != nil {
		t.Fatalf("the good file was not applied: %v", err)
	}
	defer c.Close()
	if err := testutil.RoundTrip(c, "moved"); err != nil {
		t.Fatal(err)
	}
}
