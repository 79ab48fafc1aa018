package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// startGateway runs a gateway on the config text, written to a file whose
// path it returns, until the test ends.
func startGateway(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.Start(context.Background(), io.Discard, snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Shutdown() })
	return path
}

// TestStatusCommand runs `etcd-gateway status` against a running gateway
// with one endpoint up and one down: the tables show both, aligned, with
// the reason; -o json is /status itself; the admin address comes from the
// flag or from the config file.
func TestStatusCommand(t *testing.T) {
	echo := testutil.Echo(t).Addr
	dead := testutil.RefusingAddr(t)
	adminAddr, listenAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	path := startGateway(t, "admin-addr: "+adminAddr+"\nshutdown-timeout: 1s\n"+
		"health-check: {type: tcp, interval: 200ms, timeout: 200ms, fall: 1, rise: 1}\n"+
		"listeners:\n  - name: main\n    listen-addr: "+listenAddr+"\n    endpoints: ["+echo+", "+dead+"]\n")

	var st gateway.Status
	testutil.WaitFor(t, "the dead endpoint to be found unhealthy", 10*time.Second, func() bool {
		out, errOut, err := execute("status", "--admin-addr", adminAddr, "-o", "json")
		if err != nil {
			t.Fatalf("status -o json: %v\n%s", err, errOut)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -o json is not /status: %v\n%s", err, out)
		}
		return len(st.Listeners) == 1 && len(st.Listeners[0].Endpoints) == 2 && st.Listeners[0].Endpoints[1].Health == "unhealthy"
	})
	if st.Listeners[0].Name != "main" || st.Listeners[0].Address != listenAddr || st.ConfigFile != path {
		t.Fatalf("status -o json: %+v", st)
	}

	for _, args := range [][]string{{"--admin-addr", adminAddr}, {"--config", path}} {
		out, errOut, err := execute(append([]string{"status"}, args...)...)
		if err != nil {
			t.Fatalf("status %v: %v\n%s", args, err, errOut)
		}
		lines := strings.Split(out, "\n")
		row := func(prefix string) string {
			for _, l := range lines {
				if strings.HasPrefix(l, prefix) {
					return l
				}
			}
			t.Fatalf("status %v: no line starting with %q:\n%s", args, prefix, out)
			return ""
		}
		if !strings.Contains(row("health:"), "ok") {
			t.Errorf("health line: %q", row("health:"))
		}
		row("LISTENER  ADDRESS")
		if l := row("main  "); !strings.Contains(l, listenAddr) || !strings.Contains(l, "1/2") || !strings.Contains(l, "static") {
			t.Errorf("listener row %q: want its address, static, 1/2 up", l)
		}
		epHeader := row("LISTENER  ENDPOINT")
		col := strings.Index(epHeader, "ENDPOINT")
		reasonCol := strings.Index(epHeader, "REASON")
		for _, want := range []struct{ addr, state, reason string }{{echo, "up", "-"}, {dead, "DOWN", "health check failed: tcp check"}} {
			l := row("main" + strings.Repeat(" ", col-len("main")) + want.addr)
			if f := strings.Fields(l); f[2] != want.state {
				t.Errorf("%s: state %q, want %q: %q", want.addr, f[2], want.state, l)
			}
			if len(l) < reasonCol || !strings.HasPrefix(l[reasonCol:], want.reason) {
				t.Errorf("%s: the REASON column (%d) of %q is not %q", want.addr, reasonCol, l, want.reason)
			}
		}
	}
}

// TestStatusCommandErrors: an admin server that doesn't answer, and a
// config file without admin-addr, are said plainly, with exit code 1.
func TestStatusCommandErrors(t *testing.T) {
	_, errOut, code := executeCode("status", "--admin-addr", testutil.RefusingAddr(t))
	if code != exitFailure || !strings.Contains(errOut, "can't reach the admin server") || !strings.Contains(errOut, "is the gateway running") {
		t.Errorf("unreachable admin server: exit %d, stderr %q", code, errOut)
	}
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte("listeners:\n  - name: main\n    listen-addr: 127.0.0.1:23790\n    endpoints: [127.0.0.1:2379]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = executeCode("status", "--config", path)
	if code != exitFailure || !strings.Contains(errOut, "the admin server is off") || !strings.Contains(errOut, path) {
		t.Errorf("no admin-addr: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = executeCode("status", "--admin-addr", "127.0.0.1:1", "-o", "yaml")
	if code != exitFailure || !strings.Contains(errOut, "want text or json") {
		t.Errorf("-o yaml: exit %d, stderr %q", code, errOut)
	}
}
