//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	tcpAddr, sockPath, files := systemdSockets(t)
	path := filepath.Join(t.TempDir(), "gw.yaml")
	writeActivationConfig(t, path, echo.Addr, "systemd:etcd-local")
	gw := startActivated(t, path, []string{"etcd-tcp", "etcd-local"}, files)
	roundTripThrough(t, "tcp", tcpAddr)
	roundTripThrough(t, "unix", sockPath)

	gw.waitWatched(t)
	writeActivationConfig(t, path, echo.Addr, "systemd:nope")
	gw.reload()
	rejectsUnpassedSocket(t, gw)
	roundTripThrough(t, "unix", sockPath)
	stopLeavesSocketFile(t, gw, sockPath)
}

// systemdSockets opens what systemd would pass: a TCP listening socket and
// a unix one at sockPath, and their descriptors' files.
func systemdSockets(t *testing.T) (tcpAddr, sockPath string, files []*os.File) {
	t.Helper()
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcpLn.Close() })
	sockPath = filepath.Join(t.TempDir(), "gw.sock")
	unixLn, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unixLn.Close() })
	for _, ln := range []interface{ File() (*os.File, error) }{tcpLn.(*net.TCPListener), unixLn.(*net.UnixListener)} {
		f, err := ln.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		files = append(files, f)
	}
	return tcpLn.Addr().String(), sockPath, files
}

// writeActivationConfig writes the gateway's config to path: listener tcp
// on systemd's socket etcd-tcp, listener local on second.
func writeActivationConfig(t *testing.T, path, echoAddr, second string) {
	t.Helper()
	conf := fmt.Sprintf(`log-level: debug
log-format: json
shutdown-timeout: 2s
health-check: {type: tcp}
listeners:
  - {name: tcp, listen-addr: "systemd:etcd-tcp", endpoints: [%q]}
  - {name: local, listen-addr: %q, endpoints: [%q], allowed-uids: [%d]}
`, echoAddr, second, echoAddr, os.Getuid())
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// roundTripThrough checks that a client connecting on network to addr is
// served.
func roundTripThrough(t *testing.T, network, addr string) {
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

// rejectsUnpassedSocket checks that the reload naming a socket systemd did
// not pass is rejected, and that the rejection names that socket, those
// systemd passed, and the listener.
func rejectsUnpassedSocket(t *testing.T, gw *child) {
	t.Helper()
	line := gw.rejection(t, "the reload", 1)
	for _, want := range []string{`systemd passed no socket named \"nope\"`, "etcd-tcp, etcd-local", `listener \"local\"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the rejection %s does not say %s", line, want)
		}
	}
}

// stopLeavesSocketFile stops the gateway and checks that the unix socket's
// file, which systemd made and owns, is still there.
func stopLeavesSocketFile(t *testing.T, gw *child, sockPath string) {
	t.Helper()
	if err := gw.stop(t); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if _, err := os.Lstat(sockPath); err != nil {
		t.Fatalf("the gateway removed systemd's socket file: %v", err)
	}
}
