//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/internal/loopback"
)

// kind is a way to reach the backend: directly, or through one proxy.
type kind struct {
	name string
	// what is a human description: the program and its version.
	what string
	// launch starts a fresh instance in front of backend; nil for direct.
	launch func(dir, backend string) (*proc, error)
}

// proc is a running proxy process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has exited
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop ends the process: SIGTERM, then SIGKILL after a grace period.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(3 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// findKinds returns direct, the gateway, and every external proxy found on
// PATH (or given by flag), with a line per proxy saying what was found.
func findKinds(opts options, say func(string, ...any)) []kind {
	kinds := []kind{{name: "direct", what: "no proxy: the client dials the backend"}, gatewayKind(opts), unixGatewayKind()}
	say("found: gateway (this tree, run as a child process), on TCP and on a unix socket")
	kinds = append(kinds, baselineKinds(opts, say)...)
	for _, name := range strings.Split(opts.proxies, ",") {
		if k, ok := externalKind(name, say); ok {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// selfPath is this binary, which runs the gateway as a child.
func selfPath() string {
	if self, err := os.Executable(); err == nil {
		return self
	}
	return os.Args[0]
}

// unixGatewayKind is the same gateway behind a unix socket listener, to
// compare with the loopback TCP one.
func unixGatewayKind() kind {
	self := selfPath()
	return kind{
		name: "gw-unix",
		what: "the same gateway on a unix socket listener (unix:///DIR/gw-unix-*/gw.sock)",
		launch: func(dir, backend string) (*proc, error) {
			// A directory of its own: a fresh instance must not find, and
			// take for its own, the socket of one still running.
			sub, err := os.MkdirTemp(dir, "gw-unix-")
			if err != nil {
				return nil, err
			}
			addr := "unix://" + filepath.Join(sub, "gw.sock")
			return startProcAt(dir, "gw-unix", self, []string{"-child-gateway", "-listen", addr, "-backend", backend}, addr)
		},
	}
}

// gatewayKind is the gateway from this tree: this binary re-executed.
func gatewayKind(opts options) kind {
	self := selfPath()
	return kind{
		name: "gateway",
		what: "etcd-gateway from this tree (" + goVersion() + "), a separate process",
		launch: func(dir, backend string) (*proc, error) {
			args := []string{"-child-gateway", "-listen", "%ADDR%", "-backend", backend}
			if opts.profile != "" {
				args = append(args, "-child-profile", opts.profile)
			}
			return startProc(dir, "gateway", self, args)
		},
	}
}

// baselineKinds are the etcd-gateway binaries -baseline names.
func baselineKinds(opts options, say func(string, ...any)) []kind {
	var kinds []kind
	for _, nb := range strings.Split(opts.baseline, ",") {
		name, bin, ok := strings.Cut(nb, "=")
		if !ok {
			name, bin = "baseline", nb
		}
		if bin == "" {
			continue
		}
		kinds = append(kinds, kind{
			name: name,
			what: "etcd-gateway binary " + bin,
			launch: func(dir, backend string) (*proc, error) {
				return startProc(dir, name, bin, []string{"start", "--listen-addr", "%ADDR%", "--endpoints", backend})
			},
		})
		say("found: %s (%s)", name, bin)
	}
	return kinds
}

// externalKind is the proxy -proxies calls name, if it is known and on
// PATH.
func externalKind(name string, say func(string, ...any)) (kind, bool) {
	switch strings.TrimSpace(name) {
	case "haproxy":
		return haproxyKind(say)
	case "etcd":
		return etcdGatewayKind(say)
	case "":
	default:
		say("unknown proxy %q; skipped (known: haproxy, etcd)", name)
	}
	return kind{}, false
}

// haproxyKind is HAProxy in TCP mode.
func haproxyKind(say func(string, ...any)) (kind, bool) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		say("not found: haproxy (not on PATH); skipped")
		return kind{}, false
	}
	v := firstLine(bin, "-v")
	say("found: haproxy (%s)", v)
	return kind{name: "haproxy", what: v, launch: func(dir, backend string) (*proc, error) {
		return startHAProxy(dir, bin, backend)
	}}, true
}

// etcdGatewayKind is `etcd gateway start`.
func etcdGatewayKind(say func(string, ...any)) (kind, bool) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		say("not found: etcd (for `etcd gateway start`, not on PATH); skipped")
		return kind{}, false
	}
	v := firstLine(bin, "--version")
	say("found: etcd gateway (%s)", v)
	return kind{name: "etcd-gw", what: "etcd gateway start, " + v, launch: func(dir, backend string) (*proc, error) {
		return startProc(dir, "etcd-gw", bin, []string{"gateway", "start", "--listen-addr=%ADDR%", "--endpoints=" + backend, "--retry-delay=1m"})
	}}, true
}

func goVersion() string { return runtime.Version() }

// firstLine runs bin with args and returns the first line of its output.
func firstLine(bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// startHAProxy writes a plain TCP-mode config and starts HAProxy in the
// foreground.
func startHAProxy(dir, bin, backend string) (*proc, error) {
	addr, err := listenAddr()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`global
    maxconn 9900
defaults
    mode tcp
    maxconn 9900
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend bench
    bind %s
    default_backend echo
backend echo
    server s1 %s
`, addr, backend)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return startProcAt(dir, "haproxy", bin, []string{"-db", "-f", path}, addr)
}

// startProc starts bin with args, %ADDR% replaced by a free loopback
// address, and waits until it forwards.
func startProc(dir, name, bin string, args []string) (*proc, error) {
	addr, err := listenAddr()
	if err != nil {
		return nil, err
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "%ADDR%", addr)
	}
	return startProcAt(dir, name, bin, args, addr)
}

func startProcAt(dir, name, bin string, args []string, addr string) (*proc, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The child dies with the bench, even when the bench is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := waitReady(p); err != nil {
		p.stop()
		log, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		return nil, fmt.Errorf("%s did not start forwarding: %w\n%s", name, err, tail(string(log), 1000))
	}
	return p, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitReady polls p's address with an echo until it answers, for at most
// ten seconds.
func waitReady(p *proc) error {
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if !p.alive() {
			return errors.New("the process exited")
		}
		var c net.Conn
		if c, err = openEcho(p.addr, time.Second); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// listenAddr returns a loopback address for a proxy to listen on, held
// until the bench ends (loopback.Reserve): nothing else on the machine can
// take it before the proxy binds it.
func listenAddr() (string, error) {
	h, err := loopback.Reserve("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	return h.Addr(), nil
}

// openEcho dials addr, selects echo mode and checks that one byte comes
// back, so the connection is established end to end.
func openEcho(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	var b [1]byte
	if _, err := c.Write([]byte{modeEcho, 'x'}); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// dial connects to addr: host:port, or unix:///path for a unix socket.
func dial(addr string, timeout time.Duration) (net.Conn, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		return net.DialTimeout("unix", path, timeout)
	}
	return net.DialTimeout("tcp", addr, timeout)
}

// runChildGateway is the bench binary re-executed as the gateway under
// test: one listener on listen in front of backend, logs to stderr at warn
// level, until SIGTERM or SIGINT; with a CPU profile when profile is set.
func runChildGateway(listen, backend, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	f := config.DefaultFlags()
	f.ListenAddr = listen
	f.Endpoints = []string{backend}
	snap, err := config.FromFlags(f)
	if err != nil {
		return err
	}
	snap.LogLevel = "warn"
	ctx, stop := signalContext()
	defer stop()
	gw, err := gateway.Start(ctx, os.Stderr, snap)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return gw.Shutdown()
}

// procStats reads a process's resident memory (bytes) and open file
// descriptors.
func procStats(pid int) (rss int64, fds int, err error) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("VmRSS: %w", err)
			}
			rss = kb << 10
		}
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, 0, err
	}
	return rss, len(ents), nil
}

// cpuTime is the CPU time (user and system, every thread) process pid has
// used so far, to the kernel's clock tick (10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: skip past it.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTick = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clockTick
}

// contextSwitches is how many times the threads of process pid have been
// switched out, voluntarily or not.
func contextSwitches(pid int) int64 {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, _ := os.ReadDir(dir)
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}
