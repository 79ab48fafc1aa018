//go:build linux

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestShippedBinaryHasNoFailpoint builds the gateway as it ships, without
// the failpoints tag: the failpoint is not in it (neither its variable's
// name nor its message, which the tests' binary holds), and a gateway
// whose environment names a step of the handover hands over all the same.
func TestShippedBinaryHasNoFailpoint(t *testing.T) {
	shipped := filepath.Join(t.TempDir(), "etcd-gateway")
	if err := build(shipped); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{failpointEnv, "upgrade test hook: stopped at"} {
		if !binaryHolds(t, os.Getenv(binaryEnv), s) {
			t.Fatalf("the tests' binary, built with the failpoints tag, lacks %q", s)
		}
		if binaryHolds(t, shipped, s) {
			t.Errorf("the binary built without the failpoints tag holds %q", s)
		}
	}

	path, addr, _, sock := upgradeConfig(t, testutil.Echo(t).Addr)
	cmd := gatewayCommand(setup{}, "start", "--config", path)
	cmd.Path, cmd.Args[0] = shipped, shipped
	cmd.Env = append(cmd.Env, failpointEnv+"=old:ready")
	old := launch(t, cmd, "listen", dialable(addr))
	testutil.WaitFor(t, "the upgrade socket", 10*time.Second, func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	next := startChild(t, path, addr, 0)
	next.tookOver(t)
	old.waitExit(t, "the shipped gateway told to stop at old:ready")
	if lines := old.logLines("upgrade test hook"); len(lines) > 0 {
		t.Errorf("the shipped gateway ran the failpoint: %s", lines[0])
	}
	if err := next.stop(t); err != nil {
		t.Fatal(err)
	}
}

// binaryHolds says whether the file at path holds the bytes of s.
func binaryHolds(t *testing.T, path, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}
