package control

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the user another process runs as.
const nobody = 65534

// TestAnotherUserIsRefused runs a caller as nobody: refused by the
// socket's mode, refused by the credential check once the mode is
// loosened, and let in as a member of control-group.
func TestAnotherUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a caller as another user")
	}
	dir := openDir(t)
	bin := copyBinary(t, dir)
	s := serve(t, dir, Access{})
	if out := callAs(t, bin, s.Path(), nil); !strings.Contains(out, "permission denied") {
		t.Fatalf("a caller as nobody, socket 0600: %q, want permission denied", out)
	}
	if err := os.Chmod(s.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	if out := callAs(t, bin, s.Path(), nil); !strings.Contains(out, "refused: user 65534 is not root") {
		t.Fatalf("a caller as nobody, socket 0666: %q, want refused by the credential check", out)
	}

	const group = 4242 // a group number no user has
	gid := uint32(group)
	gs := serve(t, filepath.Join(dir, "g"), Access{Group: &gid, GroupName: "operators"})
	fi, err := os.Stat(gs.Path())
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != group {
		t.Fatalf("socket with a control-group: %v, %v", fi, err)
	}
	if out := callAs(t, bin, gs.Path(), []uint32{group}); !strings.Contains(out, "answer: hi") {
		t.Fatalf("a caller in control-group: %q, want let in", out)
	}
	if out := callAs(t, bin, gs.Path(), nil); !strings.Contains(out, "permission denied") {
		t.Fatalf("a caller outside control-group: %q, want permission denied", out)
	}
}

// openDir returns a directory every user may enter, with a subdirectory g.
func openDir(t *testing.T) string {
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "g"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyBinary copies the test binary where nobody may run it.
func copyBinary(t *testing.T, dir string) string {
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "caller")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// callAs runs the test binary as a caller of path, as nobody with groups,
// and returns what it printed.
func callAs(t *testing.T, bin, path string, groups []uint32) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), callerEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: groups}}
	out, _ := cmd.CombinedOutput()
	return string(out)
}
