//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// startActivated runs `etcd-gateway start --config path` in a child
// process the way systemd starts a socket-activated service: the listening
// sockets on descriptors 3 and up, LISTEN_FDS, LISTEN_FDNAMES, and
// LISTEN_PID set to the child's own pid.
func startActivated(t *testing.T, path string, names []string, files []*os.File) *child {
	t.Helper()
	cmd := gatewayCommand(setup{listenPIDSelf: true}, "start", "--config", path)
	cmd.Env = append(cmd.Env, fmt.Sprintf("LISTEN_FDS=%d", len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	cmd.ExtraFiles = files
	return launch(t, cmd, "start", func(c *child) bool { return len(c.logLines("gateway started")) > 0 })
}

// TestSocketActivation passes a TCP and a unix listening socket to a
// child gateway as systemd does: clients are served through both, a
// reload that names a socket systemd did not pass is rejected, and the
// unix socket's file, systemd's, is left at shutdown.
func TestSocketActivation(t *testing.T) {
	echo := testutil.Echo(t)
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcpLn.Close() })
	sockPath := filepath.Join(t.TempDir(), "gw.sock")
	unixLn, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unixLn.Close() })
	var files []*os.File
	for _, ln := range []interface{ File() (*os.File, error) }{tcpLn.(*net.TCPListener), unixLn.(*net.UnixListener)} {
		f, err := ln.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		files = append(files, f)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	conf := func(second string) string {
		return fmt.Sprintf(`log-level: debug
log-format: json
shutdown-timeout: 2s
health-check: {type: tcp}
listeners:
  - {name: tcp, listen-addr: "systemd:etcd-tcp", endpoints: [%q]}
  - {name: local, listen-addr: %q, endpoints: [%q], allowed-uids: [%d]}
`, echo.Addr, second, echo.Addr, os.Getuid())
	}
	if err := os.WriteFile(path, []byte(conf("systemd:etcd-local")), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startActivated(t, path, []string{"etcd-tcp", "etcd-local"}, files)
	roundTrip := func(network, addr string) {
		t.Helper()
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := testutil.RoundTrip(c, "through "+addr); err != nil {
			t.Fatalf("through %s: %v", addr, err)
		}
	}
	roundTrip("tcp", tcpLn.Addr().String())
	roundTrip("unix", sockPath)

	testutil.WaitFor(t, "the watcher's first read", 10*time.Second, func() bool {
		return len(gw.logLines("config file watched")) == 1
	})
	if err := os.WriteFile(path, []byte(conf("systemd:nope")), 0o644); err != nil {
		t.Fatal(err)
	}
	gw.reload()
	testutil.WaitFor(t, "the reload to be rejected", 10*time.Second, func() bool {
		return len(gw.logLines("config reload rejected")) > 0
	})
	line := gw.logLines("config reload rejected")[0]
	for _, want := range []string{`systemd passed no socket named \"nope\"`, "etcd-tcp, etcd-local", `listener \"local\"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the rejection %s does not say %s", line, want)
		}
	}
	roundTrip("unix", sockPath)
	if err := gw.stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if _, err := os.Lstat(sockPath); err != nil {
		t.Fatalf("the gateway removed systemd's socket file: %v", err)
	}
}
