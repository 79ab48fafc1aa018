//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// runCLI runs the gateway binary with args and returns its output and
// exit code.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := gatewayCommand(setup{}, args...).CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

// TestReloadCommand drives `etcd-gateway reload` against a running child
// gateway: unchanged for the running file (exit 0), rejected with the
// error naming the file, listener and key for a bad one (exit 1) while the
// old config serves on, and a clear error where no gateway answers.
func TestReloadCommand(t *testing.T) {
	echo := testutil.Echo(t)
	addr := testutil.ListenAddr(t)
	sock := filepath.Join(t.TempDir(), "control.sock")
	path := writeConfig(t, addr, echo.Addr, "control-socket: "+sock+"\n")
	startChild(t, path, addr, 0)

	if out, code := runCLI(t, "reload", "--config", path); code != 0 || strings.TrimSpace(out) != "unchanged" {
		t.Fatalf("reload of the running file: exit %d, %q; want 0, unchanged", code, out)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), "dial-timeout: 1s", "dial-timeout: -1s", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "reload", "--config", path)
	if code != 1 || !strings.Contains(out, "rejected") {
		t.Fatalf("reload of a bad file: exit %d, %q; want 1, rejected", code, out)
	}
	for _, want := range []string{path, `listener "main"`, `key "dial-timeout"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the rejection does not name %s: %q", want, out)
		}
	}
	if c := testutil.Dial(t, addr); !testutil.Echoes(c) {
		t.Fatal("the listener stopped serving after a rejected reload")
	}
	none := filepath.Join(t.TempDir(), "none.sock")
	if out, code := runCLI(t, "reload", "--control-socket", none); code != 1 || !strings.Contains(out, "no gateway answers on control socket "+none) {
		t.Fatalf("reload with no gateway: exit %d, %q", code, out)
	}
}
