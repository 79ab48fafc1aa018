//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A summary as strace 6.1 writes it with -c -U name,calls,errors.
const summarySample = `syscall              calls    errors
---------------- --------- ---------
epoll_pwait            934          
accept4                200       100
connect                100       100
---------------- --------- ---------
total                 1234       200
`

func TestParseSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary")
	if err := os.WriteFile(path, []byte(summarySample), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseSummary(f)
	if err != nil {
		t.Fatal(err)
	}
	want := sysCounts{"epoll_pwait": {934, 0}, "accept4": {200, 100}, "connect": {100, 100}}
	if fmt.Sprint(got) != fmt.Sprint(want) || got.total() != (sysCount{1234, 200}) {
		t.Fatalf("parsed %v (total %v), want %v (total 1234, 200 errors)", got, got.total(), want)
	}
}

func TestParseSummaryRejectsGarbage(t *testing.T) {
	for name, text := range map[string]string{"empty": "", "bad count": "read  many\n"} {
		path := filepath.Join(t.TempDir(), "summary")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseSummary(f); err == nil {
			t.Errorf("%s: parsed without an error", name)
		}
		f.Close()
	}
}

// TestAttachCounts attaches strace to a real shell that echoes lines, and
// checks that it counts the shell's writes: one per line echoed, the last
// one perhaps not (its echo may arrive before strace sees the call return).
func TestAttachCounts(t *testing.T) {
	bin, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not on PATH")
	}
	cmd := exec.Command("/bin/sh", "-c", `while read -r l; do echo "$l"; done`)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	tr, err := attach(bin, t.TempDir(), cmd.Process.Pid)
	if err != nil {
		t.Skipf("strace cannot attach here: %v", err)
	}
	echoed := bufio.NewScanner(out)
	const lines = 50
	for i := range lines + 1 {
		fmt.Fprintf(in, "line %d\n", i)
		if !echoed.Scan() || !strings.HasPrefix(echoed.Text(), "line ") {
			t.Fatalf("line %d not echoed: %v", i, echoed.Err())
		}
	}
	counts, err := tr.stop()
	if err != nil {
		t.Fatal(err)
	}
	if w := counts["write"].calls; w < lines || w > lines+1 {
		t.Errorf("counted %d writes, want %d or %d (counts: %v)", w, lines, lines+1, counts)
	}
}

// TestAttachToExitedProcessFails checks that attach reports a process it
// cannot trace instead of counting nothing.
func TestAttachToExitedProcessFails(t *testing.T) {
	bin, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not on PATH")
	}
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if tr, err := attach(bin, t.TempDir(), cmd.Process.Pid); err == nil {
		_, _ = tr.stop()
		t.Fatal("attached to an exited process")
	}
}
