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

// diffConfig writes a config file of two listeners, each "name addr
// endpoint dial-timeout", to a new directory.
func diffConfig(t *testing.T, top string, listeners ...[4]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(top + "log-format: json\nshutdown-timeout: 2s\nlisteners:\n")
	for _, l := range listeners {
		fmt.Fprintf(&b, "  - name: %s\n    listen-addr: %s\n    endpoints: [%s]\n    dial-timeout: %s\n", l[0], l[1], l[2], l[3])
	}
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckDiff drives `etcd-gateway check --diff` against a running
// child gateway: a file that adds a listener, removes one, re-binds one,
// adds and removes an endpoint and changes keys gets a line for each,
// and nothing of it is applied; the running file gets "no changes"; an
// invalid file exits 1 with the error naming file, listener and key; with
// no gateway, a clear error.
func TestCheckDiff(t *testing.T) {
	a, b := testutil.Echo(t).Addr, testutil.Echo(t).Addr
	addr, oldAddr, newAddr, extraAddr := testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	top := "control-socket: " + filepath.Join(t.TempDir(), "control.sock") + "\n"
	running := diffConfig(t, top+"log-level: info\n", [4]string{"main", addr, a, "1s"}, [4]string{"old", oldAddr, a, "1s"})
	startChild(t, running, addr, 0)

	next := diffConfig(t, top+"log-level: debug\n", [4]string{"main", newAddr, b, "2s"}, [4]string{"extra", extraAddr, a, "1s"})
	out, code := runCLI(t, "check", "--diff", "--config", next)
	want := strings.Join([]string{
		"~ log-level: info → debug",
		"+ listener extra",
		"- listener old",
		"~ listener main",
		"~ listener main listen-addr: " + addr + " → " + newAddr,
		"~ listener main dial-timeout: 1s → 2s",
		"+ listener main endpoint " + b,
		"- listener main endpoint " + a,
	}, "\n")
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("check --diff: exit %d,\n%s\nwant exit 0,\n%s", code, out, want)
	}
	for _, serving := range []string{addr, oldAddr} {
		if c := testutil.Dial(t, serving); !testutil.Echoes(c) {
			t.Fatalf("%s stopped serving after check --diff", serving)
		}
	}
	for _, unbound := range []string{newAddr, extraAddr} {
		if c, err := net.Dial("tcp", unbound); err == nil {
			c.Close()
			t.Fatalf("check --diff applied the file: %s accepts", unbound)
		}
	}
	if out, code := runCLI(t, "check", "--diff", "--config", running); code != 0 || strings.TrimSpace(out) != "no changes" {
		t.Fatalf("check --diff of the running file: exit %d, %q; want 0, no changes", code, out)
	}

	bad := diffConfig(t, top, [4]string{"main", addr, a, "-1s"})
	out, code = runCLI(t, "check", "--diff", "--config", bad)
	if code != 1 {
		t.Fatalf("check --diff of a bad file: exit %d, %q; want 1", code, out)
	}
	for _, want := range []string{bad, `listener "main"`, `key "dial-timeout"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not name %s: %q", want, out)
		}
	}
	none := filepath.Join(t.TempDir(), "none.sock")
	if out, code := runCLI(t, "check", "--diff", "--config", next, "--control-socket", none); code != 1 || !strings.Contains(out, "no gateway answers on control socket "+none) {
		t.Fatalf("check --diff with no gateway: exit %d, %q", code, out)
	}
}
