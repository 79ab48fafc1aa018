//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysCount is how often a system call was made, and how often it failed.
type sysCount struct{ calls, errors int }

// sysCounts is strace's summary: system call name → count. strace counts
// every call; how slow it makes each one does not change the count.
type sysCounts map[string]sysCount

// total is the sum over every system call.
func (s sysCounts) total() sysCount {
	var t sysCount
	for _, c := range s {
		t.calls += c.calls
		t.errors += c.errors
	}
	return t
}

// tracer is `strace -c -f -p PID`: attached to every thread of one running
// process (and those it starts), counting their system calls until it is
// interrupted.
type tracer struct {
	cmd  *exec.Cmd
	out  string        // strace's summary file
	done chan struct{} // closed when strace has exited
}

// attach starts strace (bin) on process pid, writing its files in dir, and
// returns once it traces every thread of pid.
func attach(bin, dir string, pid int) (*tracer, error) {
	out := filepath.Join(dir, fmt.Sprintf("strace-%d-%d.txt", pid, time.Now().UnixNano()))
	logf, err := os.Create(out + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-c", "-f", "-U", "name,calls,errors", "-o", out, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("strace: %w", err)
	}
	t := &tracer{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(t.done)
	}()
	if err := t.waitTraced(pid, 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-t.done
		log, _ := os.ReadFile(out + ".log")
		return nil, fmt.Errorf("strace -p %d: %w\n%s", pid, err, tail(string(log), 1000))
	}
	return t, nil
}

// waitTraced waits, for at most d, until every thread of pid has strace
// as its tracer.
func (t *tracer) waitTraced(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		untraced, err := untracedThreads(pid, t.cmd.Process.Pid)
		switch {
		case err != nil:
			return err
		case untraced == 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%d threads still not traced after %s", untraced, d)
		}
		select {
		case <-t.done:
			return errors.New("strace exited")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// untracedThreads counts the threads of pid whose tracer is not tracerPid.
func untracedThreads(pid, tracerPid int) (int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	want := "TracerPid:\t" + strconv.Itoa(tracerPid) + "\n"
	n := 0
	for _, task := range tasks {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err == nil && !strings.Contains(string(status), want) {
			n++
		}
	}
	return n, nil
}

// stop interrupts strace, which detaches and writes its summary, and
// returns the counts. A call that is under way then may be left out.
func (t *tracer) stop() (sysCounts, error) {
	_ = t.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-t.done:
	case <-time.After(10 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
		return nil, errors.New("strace did not exit within 10 s of SIGINT")
	}
	f, err := os.Open(t.out)
	if err != nil {
		return nil, fmt.Errorf("strace summary: %w", err)
	}
	defer f.Close()
	return parseSummary(f)
}

// parseSummary reads strace -c -U name,calls,errors output: a header, a
// rule, one line per system call (name, calls, errors left blank when 0),
// a rule, a total line.
func parseSummary(f *os.File) (sysCounts, error) {
	counts := sysCounts{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] == "syscall" || fields[0] == "total" || strings.HasPrefix(fields[0], "---") {
			continue
		}
		c, err := parseCount(fields)
		if err != nil {
			return nil, fmt.Errorf("strace summary line %q: %w", sc.Text(), err)
		}
		counts[fields[0]] = c
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(counts) == 0 {
		return nil, errors.New("strace summary: no system calls counted")
	}
	return counts, nil
}

// parseCount reads the calls and, if present, the errors of a summary line.
func parseCount(fields []string) (sysCount, error) {
	var c sysCount
	var err error
	if c.calls, err = strconv.Atoi(fields[1]); err != nil {
		return c, err
	}
	if len(fields) > 2 {
		c.errors, err = strconv.Atoi(fields[2])
	}
	return c, err
}
