//go:build linux

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
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
	dir, caFile, member := startTLSMember(t)
	defer member.Close()
	g := startTLSGateway(t, dir, caFile, member)
	plain, viaTLS := g.dialBoth(t)
	next := g.handOverPlainOnly(t)
	g.checkBothServed(t, plain, viaTLS)
	viaTLS.Close()
	g.old.waitExit(t, "the old gateway, once its TLS connection ended")
	if err := testutil.RoundTrip(plain, "plain at the end"); err != nil {
		t.Fatal(err)
	}
	plain.Close()
	if err := next.stop(t); err != nil {
		t.Fatal(err)
	}
}

// tlsGateway is TestUpgradeTLSConnectionsDrainInOldProcess's gateway,
// with a plain and a TLS listener.
type tlsGateway struct {
	plainAddr, tlsAddr, path string
	old                      *child
}

// startTLSMember starts a TLS member with a certificate of a new CA, and
// returns the test's directory, the CA's file there and the member.
func startTLSMember(t *testing.T) (string, string, *tlstest.Server) {
	t.Helper()
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
	return dir, caFile, member
}

// startTLSGateway starts a gateway with a plain listener to an echo and a
// TLS one to member, trusting caFile.
func startTLSGateway(t *testing.T, dir, caFile string, member *tlstest.Server) *tlsGateway {
	t.Helper()
	g := &tlsGateway{}
	echo := testutil.Echo(t)
	g.plainAddr, g.tlsAddr = testutil.ListenAddr(t), testutil.ListenAddr(t)
	sock := filepath.Join(dir, "upgrade.sock")
	g.path = filepath.Join(dir, "gw.yaml")
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
`, sock, g.plainAddr, echo.Addr, g.tlsAddr, member.Port, caFile)
	if err := os.WriteFile(g.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g.old = startUpgradable(t, g.path, g.plainAddr, sock)
	return g
}

// dialBoth opens a connection through each listener and wants an exchange
// on the plain one and the member's greeting on the TLS one.
func (g *tlsGateway) dialBoth(t *testing.T) (plain, viaTLS net.Conn) {
	t.Helper()
	plain = testutil.Dial(t, g.plainAddr)
	if err := testutil.RoundTrip(plain, "plain before"); err != nil {
		t.Fatal(err)
	}
	viaTLS = testutil.Dial(t, g.tlsAddr)
	_ = viaTLS.SetDeadline(time.Now().Add(10 * time.Second))
	greeting := make([]byte, len(tlstest.Greeting))
	if _, err := io.ReadFull(viaTLS, greeting); err != nil || string(greeting) != tlstest.Greeting {
		t.Fatalf("greeting through the TLS listener: %q, %v", greeting, err)
	}
	return plain, viaTLS
}

// handOverPlainOnly starts the new gateway and wants it to adopt the plain
// connection only, the old one to keep the TLS one; it returns the new
// gateway.
func (g *tlsGateway) handOverPlainOnly(t *testing.T) *child {
	t.Helper()
	next := startChild(t, g.path, g.plainAddr, 0)
	testutil.WaitFor(t, "the new gateway to take over", 20*time.Second, func() bool {
		return len(next.logLines("took over from the running gateway")) == 1
	})
	if line := next.logLines("took over from the running gateway")[0]; !strings.Contains(line, `"conns-adopted":1`) {
		t.Fatalf("the new gateway should adopt the plain connection only: %s", line)
	}
	testutil.WaitFor(t, "the old gateway to log the handover", 10*time.Second, func() bool {
		return len(g.old.logLines("handed over to the new gateway")) == 1
	})
	if line := g.old.logLines("handed over to the new gateway")[0]; !strings.Contains(line, `"left":1`) {
		t.Fatalf("the old gateway should keep the TLS connection: %s", line)
	}
	return next
}

// checkBothServed wants both connections to work, the plain one in the
// new process, the TLS one in the old, and the old one still running.
func (g *tlsGateway) checkBothServed(t *testing.T, plain, viaTLS net.Conn) {
	t.Helper()
	if err := testutil.RoundTrip(plain, "plain after"); err != nil {
		t.Fatalf("the moved plain connection: %v", err)
	}
	if err := testutil.RoundTrip(viaTLS, "tls after"); err != nil {
		t.Fatalf("the TLS connection left in the old process: %v", err)
	}
	select {
	case err := <-g.old.done:
		t.Fatalf("the old gateway exited with a connection open: %v", err)
	default:
	}
}
