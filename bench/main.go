//go:build linux

// Command bench measures etcd-gateway against a direct loopback connection
// and against the other TCP proxies it finds on PATH (HAProxy, and etcd's own
// `etcd gateway start`), all in front of the same echo/source backend:
//
//	go run ./bench                       # every row, 3 rounds of 5 s
//	go run ./bench -duration 2s -rounds 1 -rows rr1,bulk
//	go run ./bench -syscalls             # system calls per connection and per hop
//
// Rows: request/response at 1 and at -conns connections (ops/s, p50, p99),
// one-way bulk (MB/s), connect/request/close (conns/s), the memory and
// descriptors -idle idle connections cost the proxy process, and whether it
// holds -hold idle connections that all still answer. Runs of the different
// targets alternate; each figure is the median of the rounds, printed with
// its ratio to direct and the gateway's ratio to every other proxy. The
// gateway runs as a child process (this binary re-executed) so that the load
// generator's memory is not counted.
//
// With -syscalls the tool runs no row: it attaches strace -c -f to a fresh
// instance of each proxy in turn and counts the system calls it makes for
// a fixed number of connections, then of round trips, made one at a time
// (-syscall-workers) so that no proxy batches events differently because
// strace slows it.
//
// See docs/performance.md for the latest results.
//
// The bench builds on Linux only: it reads /proc, traces with strace and
// ties its proxies to its own life with Pdeathsig.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// options are the tool's flags.
type options struct {
	duration    time.Duration
	rounds      int
	size        int
	conns       int
	pace        time.Duration
	bulkMiB     int64
	workers     int
	connectSize int
	idle        int
	hold        int
	settle      time.Duration
	rows        string
	proxies     string
	baseline    string
	profile     string
	syscalls    bool
	sysConns    int
	sysTrips    int
	sysWorkers  int
}

// childFlags are the internal flags of the bench re-executed as the
// gateway under test.
type childFlags struct {
	child                         *bool
	listen, backend, childProfile *string
}

func main() {
	var o options
	c := registerFlags(&o)
	flag.Parse()
	if *c.child {
		if err := runChildGateway(*c.listen, *c.backend, *c.childProfile); err != nil {
			fmt.Fprintln(os.Stderr, "child gateway:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// registerFlags registers the tool's flags, into o, and the child
// gateway's.
func registerFlags(o *options) childFlags {
	c := childFlags{
		child:        flag.Bool("child-gateway", false, "internal: run as the gateway under test"),
		listen:       flag.String("listen", "", "internal: the child gateway's listen address"),
		backend:      flag.String("backend", "", "internal: the child gateway's backend"),
		childProfile: flag.String("child-profile", "", "internal: the child gateway's CPU profile file"),
	}
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each timed run")
	flag.IntVar(&o.rounds, "rounds", 3, "runs per target and row, alternating targets; figures are medians")
	flag.IntVar(&o.size, "size", 128, "request/response size in bytes")
	flag.IntVar(&o.conns, "conns", 64, "connections for the parallel request/response row")
	flag.DurationVar(&o.pace, "pace", 5*time.Millisecond, "pause between round trips of the paced row (a lightly loaded gateway)")
	flag.Int64Var(&o.bulkMiB, "bulk-mib", 2048, "bytes of the bulk transfer, in MiB")
	flag.IntVar(&o.workers, "workers", 8, "concurrent workers of the connect row")
	flag.IntVar(&o.connectSize, "connect-size", 64, "request/response size of the connect row")
	flag.IntVar(&o.idle, "idle", 3000, "idle connections whose cost is measured")
	flag.IntVar(&o.hold, "hold", 9000, "idle connections each proxy must hold, all answering (0 skips the row)")
	flag.DurationVar(&o.settle, "settle", time.Second, "wait after opening idle connections before measuring")
	flag.StringVar(&o.rows, "rows", "rr1,rr64,paced,bulk,connect,idle,hold", "rows to run")
	flag.StringVar(&o.proxies, "proxies", "haproxy,etcd", "external proxies to look for on PATH")
	flag.StringVar(&o.profile, "profile", "", "write the gateway child's CPU profile (pprof) to this file")
	flag.StringVar(&o.baseline, "baseline", "", "extra etcd-gateway binaries (e.g. built from other commits) to measure, as NAME=PATH[,NAME=PATH...]")
	flag.BoolVar(&o.syscalls, "syscalls", false, "instead of the rows, count each proxy's system calls with strace -c: per connection and per round trip")
	flag.IntVar(&o.sysConns, "syscall-conns", 2000, "connections (connect, -connect-size B request, response, close) whose system calls -syscalls counts")
	flag.IntVar(&o.sysTrips, "syscall-trips", 10000, "round trips of -size B on open connections whose system calls -syscalls counts")
	flag.IntVar(&o.sysWorkers, "syscall-workers", 1, "connections at a time for -syscalls; above 1, how a proxy batches events depends on how much strace slows it")
	return c
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// run measures every row for every target and prints the results.
func run(o options) error {
	if err := checkOptions(o); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "etcd-gateway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := startBackend()
	if err != nil {
		return err
	}
	defer b.close()
	bn := &bench{o: o, dir: dir, b: b, procs: map[string]*proc{}}
	bn.kinds = findKinds(o, bn.say)
	defer bn.stopAll()
	stop := bn.stopOnSignal()
	defer stop()
	if o.syscalls {
		return bn.countSyscalls()
	}
	bn.measure()
	return nil
}

// checkOptions rejects counts and durations that are not positive, and
// idle counts this process has no descriptors for.
func checkOptions(o options) error {
	if o.rounds < 1 || o.duration <= 0 || o.size < 1 || o.conns < 1 || o.pace <= 0 || o.workers < 1 || o.bulkMiB < 1 || o.idle < 1 || o.hold < 0 || o.sysConns < 1 || o.sysTrips < 1 || o.sysWorkers < 1 {
		return fmt.Errorf("bad options: every count and duration must be positive")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		// This process holds both ends of every idle connection: the client's
		// and the backend's.
		if need := uint64(2*max(o.idle, o.hold) + 200); need > lim.Cur {
			return fmt.Errorf("-idle/-hold need about %d descriptors in this process; the open-file limit is %d", need, lim.Cur)
		}
	}
	return nil
}

// stopOnSignal stops the children and exits on Ctrl-C or SIGTERM, until
// the returned function is called: a run that ends by itself exits 0.
func (bn *bench) stopOnSignal() func() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			bn.stopAll()
			os.Exit(130)
		case <-done: // the run ended by itself
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// measure runs and prints every row, then the summary and the goals.
func (bn *bench) measure() {
	o := bn.o
	bn.say("machine: %s", machine())
	bn.say("runs: %d rounds, %s each, targets alternating; figures are medians", o.rounds, o.duration)
	results := map[string]map[string][]float64{} // row → kind → medians
	notes := map[string]map[string]string{}
	for _, r := range rows(o) {
		med, note := bn.runRow(r)
		results[r.key], notes[r.key] = med, note
		bn.printRow(r, med, note)
	}
	bn.printSummary(rows(o), results)
	bn.printGoals(results)
}

// machine describes the host in one line.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s, open-file limit %d", runtime.NumCPU(), model, kernel, runtime.Version(), lim.Cur)
}
