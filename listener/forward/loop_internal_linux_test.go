package forward

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// sysmonPreempt is a copy of the runtime's forcePreemptNS, which Go does
// not export: this test reads it from the runtime's source, of the Go
// that built the test, and fails when a release changes it.
func TestSysmonPreemptIsTheRuntimes(t *testing.T) {
	proc := runtimeSource(t, "proc.go")
	m := regexp.MustCompile(`(?m)^const forcePreemptNS\s*=\s*([0-9* ]+)`).FindSubmatch(proc)
	if m == nil {
		t.Fatal("runtime/proc.go declares no forcePreemptNS: see what sysmon preempts after now, and fix sysmonPreempt and yieldIfDue")
	}
	ns := int64(1)
	for _, f := range strings.Split(string(m[1]), "*") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("forcePreemptNS = %s: %v", m[1], err)
		}
		ns *= n
	}
	if ns != int64(sysmonPreempt) {
		t.Fatalf("the runtime's forcePreemptNS is %d ns, sysmonPreempt %d: set sysmonPreempt to it, and check yieldEvery is still under it", ns, int64(sysmonPreempt))
	}
}

// runtimeSource returns the file name of package runtime's source, from
// the GOROOT of the Go that built the test; it skips the test when that
// source is not there.
func runtimeSource(t *testing.T, name string) []byte {
	t.Helper()
	goroot := os.Getenv("GOROOT")
	if goroot == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			t.Skipf("no GOROOT to read the runtime's source from (go env GOROOT: %v)", err)
		}
		goroot = strings.TrimSpace(string(out))
	}
	if v := goVersion(filepath.Join(goroot, "VERSION")); v != runtime.Version() {
		t.Skipf("the Go at %s is %q, not %s that built this test: its runtime source says nothing of this build", goroot, v, runtime.Version())
	}
	b, err := os.ReadFile(filepath.Join(goroot, "src", "runtime", name))
	if err != nil {
		t.Skipf("the runtime's source is not installed: %v", err)
	}
	return b
}

// goVersion returns the first line of a GOROOT's VERSION file; "" without
// one.
func goVersion(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan()
	return strings.TrimSpace(s.Text())
}
