//go:build linux

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
)

// TestUpgradeTLSConnectionsDrainInOldProcess runs a listener that speaks
// TLS to its member beside a plain one: at a handover the plain
// connection moves to the new process, the TLS one (whose TLS state lives
// in the old process) stays and is served there until it ends, and only
// then does the old process exit.
func TestUpgradeTLSConnectionsDrainInOldProcess(t *testing.T) {
	ca, err := tlstest.NewCA("upgrade CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, err := ca.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	member, err := tlstest.Serve(&tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	echo := testutil.Echo(t)
	plainAddr, tlsAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	sock := filepath.Join(dir, "upgrade.sock")
	path := filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`log-level: info
log-format: json
shutdown-timeout: 30s
upgrade-socket: %s
health-check: {type: none}
listeners:
  - {name: plain, listen-addr: %q, endpoints: [%q]}
  - name: tls
    listen-addr: %q
    endpoints: ["127.0.0.1:%d"]
    upstream-tls: {ca-file: %q}
`, sock, plainAddr, echo.Addr, tlsAddr, member.Port, caFile)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	old := startUpgradable(t, path, plainAddr, sock)
	plain := testutil.Dial(t, plainAddr)
	if err := testutil.RoundTrip(plain, "plain before"); err != nil {
		t.Fatal(err)
	}
	viaTLS := testutil.Dial(t, tlsAddr)
	_ = viaTLS.SetDeadline(time.Now().Add(10 * time.Second))
	greeting := make([]byte, len(tlstest.Greeting))
	if _, err := io.ReadFull(viaTLS, greeting); err != nil || string(greeting) != tlstest.Greeting {
		t.Fatalf("greeting through the TLS listener: %q, %v", greeting, err)
	}

	next := startChild(t, path, plainAddr, 0)
	testutil.WaitFor(t, "the new gateway to take over", 20*time.Second, func() bool {
		return len(next.logLines("took over from the running gateway")) == 1
	})
	if line := next.logLines("took over from the running gateway")[0]; !strings.Contains(line, `"conns-adopted":1`) {
		t.Fatalf("the new gateway should adopt the plain connection only: %s", line)
	}
	testutil.WaitFor(t, "the old gateway to log the handover", 10*time.Second, func() bool {
		return len(old.logLines("handed over to the new gateway")) == 1
	})
	if line := old.logLines("handed over to the new gateway")[0]; !strings.Contains(line, `"left":1`) {
		t.Fatalf("the old gateway should keep the TLS connection: %s", line)
	}
	// Both still work: the plain one in the new process, the TLS one in
	// the old.
	if err := testutil.RoundTrip(plain, "plain after"); err != nil {
		t.Fatalf("the moved plain connection: %v", err)
	}
	if err := testutil.RoundTrip(viaTLS, "tls after"); err != nil {
		t.Fatalf("the TLS connection left in the old process: %v", err)
	}
	select {
	case err := <-old.done:
		t.Fatalf("the old gateway exited with a connection open: %v", err)
	default:
	}
	viaTLS.Close()
	old.waitExit(t, "the old gateway, once its TLS connection ended")
	if err := testutil.RoundTrip(plain, "plain at the end"); err != nil {
		t.Fatal(err)
	}
	plain.Close()
	if err := next.stop(t); err != nil {
		t.Fatal(err)
	}
}
