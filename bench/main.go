// Command bench measures etcd-gateway against a direct loopback connection
// and against the other TCP proxies it finds on PATH (HAProxy, and etcd's own
// `etcd gateway start`), all in front of the same echo/source backend:
//
//	go run ./bench                       # every row, 3 rounds of 5 s
//	go run ./bench -duration 2s -rounds 1 -rows rr1,bulk
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
// See docs/performance.md for the latest results.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// options are the tool's flags.
type options struct {
	duration    time.Duration
	rounds      int
	size        int
	conns       int
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
}

func main() {
	var o options
	child := flag.Bool("child-gateway", false, "internal: run as the gateway under test")
	listen := flag.String("listen", "", "internal: the child gateway's listen address")
	backendAddr := flag.String("backend", "", "internal: the child gateway's backend")
	childProfile := flag.String("child-profile", "", "internal: the child gateway's CPU profile file")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each timed run")
	flag.IntVar(&o.rounds, "rounds", 3, "runs per target and row, alternating targets; figures are medians")
	flag.IntVar(&o.size, "size", 128, "request/response size in bytes")
	flag.IntVar(&o.conns, "conns", 64, "connections for the parallel request/response row")
	flag.Int64Var(&o.bulkMiB, "bulk-mib", 2048, "bytes of the bulk transfer, in MiB")
	flag.IntVar(&o.workers, "workers", 8, "concurrent workers of the connect row")
	flag.IntVar(&o.connectSize, "connect-size", 64, "request/response size of the connect row")
	flag.IntVar(&o.idle, "idle", 3000, "idle connections whose cost is measured")
	flag.IntVar(&o.hold, "hold", 9000, "idle connections each proxy must hold, all answering (0 skips the row)")
	flag.DurationVar(&o.settle, "settle", time.Second, "wait after opening idle connections before measuring")
	flag.StringVar(&o.rows, "rows", "rr1,rr64,bulk,connect,idle,hold", "rows to run")
	flag.StringVar(&o.proxies, "proxies", "haproxy,etcd", "external proxies to look for on PATH")
	flag.StringVar(&o.profile, "profile", "", "write the gateway child's CPU profile (pprof) to this file")
	flag.StringVar(&o.baseline, "baseline", "", "extra etcd-gateway binaries (e.g. built from other commits) to measure, as NAME=PATH[,NAME=PATH...]")
	flag.Parse()

	if *child {
		if err := runChildGateway(*listen, *backendAddr, *childProfile); err != nil {
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

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// col is one figure of a row.
type col struct {
	name   string
	higher bool // higher is better
	prec   int  // decimals printed
}

// row is one measurement, run for every target.
type row struct {
	key, title string
	cols       []col
	// fresh runs each measurement on a newly started proxy process.
	fresh bool
	// proxiesOnly rows have no figure for direct.
	proxiesOnly bool
	rounds      int // 0: -rounds
	run         func(addr string, p *proc) ([]float64, string, error)
}

func rows(o options) []row {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	// cpu runs f and returns, with its figures, the CPU time p used per
	// unit of work (µs); NaN for direct.
	cpu := func(p *proc, f func() (float64, []float64, error)) ([]float64, error) {
		var t0 time.Duration
		if p != nil {
			t0 = cpuTime(p.pid())
		}
		units, figs, err := f()
		per := math.NaN()
		if p != nil && units > 0 {
			per = us(cpuTime(p.pid())-t0) / units
		}
		return append(figs, per), err
	}
	rr := func(conns int) func(string, *proc) ([]float64, string, error) {
		return func(addr string, p *proc) ([]float64, string, error) {
			figs, err := cpu(p, func() (float64, []float64, error) {
				r, err := runRR(addr, conns, o.size, o.duration)
				return float64(r.ops), []float64{r.opsPerSec, us(r.p50), us(r.p99)}, err
			})
			return figs, "", err
		}
	}
	rrCols := []col{{"ops/s", true, 0}, {"p50 µs", false, 0}, {"p99 µs", false, 0}, {"proxy CPU µs/op", false, 1}}
	all := []row{
		{key: "rr1", title: fmt.Sprintf("request/response %d B, 1 connection", o.size), cols: rrCols, run: rr(1)},
		{key: "rr64", title: fmt.Sprintf("request/response %d B, %d connections", o.size, o.conns), cols: rrCols, run: rr(o.conns)},
		{key: "bulk", title: fmt.Sprintf("one-way bulk %d MiB, backend to client", o.bulkMiB), cols: []col{{"MB/s", true, 0}, {"proxy CPU ms/GB", false, 0}},
			run: func(addr string, p *proc) ([]float64, string, error) {
				figs, err := cpu(p, func() (float64, []float64, error) {
					v, err := runBulk(addr, o.bulkMiB<<20)
					// µs per GB / 1000 = ms per GB
					return float64(o.bulkMiB<<20) / 1e9 * 1000, []float64{v}, err
				})
				return figs, "", err
			}},
		{key: "connect", title: fmt.Sprintf("connect, %d B request, response, close; %d workers", o.connectSize, o.workers),
			cols: []col{{"conns/s", true, 0}, {"p50 µs", false, 0}, {"proxy CPU µs/conn", false, 1}},
			run: func(addr string, p *proc) ([]float64, string, error) {
				figs, err := cpu(p, func() (float64, []float64, error) {
					r, err := runConnect(addr, o.workers, o.connectSize, o.duration)
					return float64(r.conns), []float64{r.perSec, us(r.p50)}, err
				})
				return figs, "", err
			}},
		{key: "idle", title: fmt.Sprintf("%d idle connections: cost in the proxy process", o.idle), fresh: true, proxiesOnly: true,
			cols: []col{{"RSS KiB/conn", false, 1}, {"fds/conn", false, 2}, {"answering %", true, 1}},
			run: func(_ string, p *proc) ([]float64, string, error) {
				r, err := runIdle(p, o.idle, o.settle)
				note := ""
				if r.openErr != nil {
					note = r.openErr.Error()
				}
				return []float64{r.rssPerConn / 1024, r.fdsPerConn, 100 * float64(r.answered) / float64(o.idle)}, note, err
			}},
		{key: "hold", title: fmt.Sprintf("hold %d idle connections under the open-file limit, all answering", o.hold), fresh: true, proxiesOnly: true, rounds: 1,
			cols: []col{{"answering", true, 0}, {"fds/conn", false, 2}},
			run: func(_ string, p *proc) ([]float64, string, error) {
				r, err := runIdle(p, o.hold, o.settle)
				note := ""
				if r.openErr != nil {
					note = r.openErr.Error()
				}
				if err != nil {
					return []float64{0, math.NaN()}, err.Error(), nil
				}
				return []float64{float64(r.answered), r.fdsPerConn}, note, nil
			}},
	}
	var out []row
	for _, key := range strings.Split(o.rows, ",") {
		for _, r := range all {
			if r.key == strings.TrimSpace(key) && !(r.key == "hold" && o.hold == 0) {
				out = append(out, r)
			}
		}
	}
	return out
}

// bench is one run of the tool: the backend, the targets and the results.
type bench struct {
	o     options
	dir   string
	b     *backend
	kinds []kind

	mu    sync.Mutex
	procs map[string]*proc // long-lived instance per proxy, for timed rows
	fresh []*proc          // fresh instances still running
}

func (bn *bench) say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// instance returns kind k's long-lived process, (re)started as needed.
func (bn *bench) instance(k kind) (*proc, error) {
	bn.mu.Lock()
	p := bn.procs[k.name]
	bn.mu.Unlock()
	if p != nil && p.alive() {
		return p, nil
	}
	p, err := k.launch(bn.dir, bn.b.addr())
	if err != nil {
		return nil, err
	}
	bn.mu.Lock()
	bn.procs[k.name] = p
	bn.mu.Unlock()
	return p, nil
}

func (bn *bench) stopAll() {
	bn.mu.Lock()
	defer bn.mu.Unlock()
	for _, p := range bn.procs {
		p.stop()
	}
	for _, p := range bn.fresh {
		p.stop()
	}
}

func run(o options) error {
	if o.rounds < 1 || o.duration <= 0 || o.size < 1 || o.conns < 1 || o.workers < 1 || o.bulkMiB < 1 || o.idle < 1 || o.hold < 0 {
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

	// On Ctrl-C, stop the children before going.
	ctx, stop := signalContext()
	defer stop()
	go func() {
		<-ctx.Done()
		if ctx.Err() != nil {
			bn.stopAll()
			os.Exit(130)
		}
	}()

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
	return nil
}

// runRow runs r for every target, alternating, and returns per target the
// median of every column.
func (bn *bench) runRow(r row) (map[string][]float64, map[string]string) {
	rounds := bn.o.rounds
	if r.rounds > 0 {
		rounds = r.rounds
	}
	bn.say("\n== %s: %s", r.key, r.title)
	samples := map[string][][]float64{}
	notes := map[string]string{}
	for round := range rounds {
		n := len(bn.kinds)
		for i := range n {
			k := bn.kinds[(i+round)%n]
			if r.proxiesOnly && k.launch == nil {
				continue
			}
			figs, note, err := bn.runOne(r, k)
			if err != nil {
				bn.say("  %-9s round %d: error: %v", k.name, round+1, err)
				notes[k.name] = err.Error()
				continue
			}
			if note != "" {
				notes[k.name] = note
			}
			samples[k.name] = append(samples[k.name], figs)
			bn.say("  %-9s round %d: %s", k.name, round+1, formatFigs(r.cols, figs))
		}
	}
	med := map[string][]float64{}
	for name, ss := range samples {
		m := make([]float64, len(r.cols))
		for c := range r.cols {
			var vs []float64
			for _, s := range ss {
				if !math.IsNaN(s[c]) {
					vs = append(vs, s[c])
				}
			}
			m[c] = median(vs)
		}
		med[name] = m
	}
	return med, notes
}

func (bn *bench) runOne(r row, k kind) ([]float64, string, error) {
	if k.launch == nil {
		return r.run(bn.b.addr(), nil)
	}
	if !r.fresh {
		p, err := bn.instance(k)
		if err != nil {
			return nil, "", err
		}
		return r.run(p.addr, p)
	}
	p, err := k.launch(bn.dir, bn.b.addr())
	if err != nil {
		return nil, "", err
	}
	bn.mu.Lock()
	bn.fresh = append(bn.fresh, p)
	bn.mu.Unlock()
	defer func() {
		p.stop()
		bn.mu.Lock()
		bn.fresh = slices.DeleteFunc(bn.fresh, func(q *proc) bool { return q == p })
		bn.mu.Unlock()
	}()
	return r.run(p.addr, p)
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func formatFigs(cols []col, figs []float64) string {
	var parts []string
	for i, c := range cols {
		parts = append(parts, fmt.Sprintf("%s %s", fmtVal(figs[i], c.prec), c.name))
	}
	return strings.Join(parts, ", ")
}

func fmtVal(v float64, prec int) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// ratio is a/b, or NaN.
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

// printRow prints r's medians, each with its ratio to direct, then the
// gateway's ratio to every other target.
func (bn *bench) printRow(r row, med map[string][]float64, notes map[string]string) {
	bn.say("  -- medians (ratio to direct in brackets)")
	direct := med["direct"]
	for _, k := range bn.kinds {
		m, ok := med[k.name]
		if !ok {
			if r.proxiesOnly && k.launch == nil {
				continue
			}
			bn.say("  %-9s no figure: %s", k.name, notes[k.name])
			continue
		}
		var parts []string
		for c, cl := range r.cols {
			s := fmtVal(m[c], cl.prec) + " " + cl.name
			if direct != nil {
				s += " (" + fmtRatio(ratio(m[c], direct[c])) + ")"
			}
			parts = append(parts, s)
		}
		line := fmt.Sprintf("  %-9s %s", k.name, strings.Join(parts, ", "))
		if n := notes[k.name]; n != "" {
			line += "  [" + n + "]"
		}
		bn.say("%s", line)
	}
	// Every proxy against every other one, the gateway first.
	for i, a := range bn.kinds {
		ma, ok := med[a.name]
		if !ok || a.launch == nil {
			continue
		}
		for _, b := range bn.kinds[i+1:] {
			mb, ok := med[b.name]
			if !ok || b.launch == nil {
				continue
			}
			var parts []string
			for c, cl := range r.cols {
				parts = append(parts, fmt.Sprintf("%s %s (%s)", cl.name, fmtRatio(ratio(ma[c], mb[c])), better(cl, ma[c], mb[c])))
			}
			bn.say("  %s ÷ %-8s %s", a.name, b.name, strings.Join(parts, ", "))
		}
	}
}

func better(c col, gw, other float64) string {
	switch {
	case math.IsNaN(gw) || math.IsNaN(other):
		return "?"
	case gw == other:
		return "same"
	case (gw > other) == c.higher:
		return "better"
	default:
		return "worse"
	}
}

// printSummary prints every row's main figures as a Markdown table, with
// ratios to direct and the gateway's ratio to each proxy.
func (bn *bench) printSummary(rs []row, results map[string]map[string][]float64) {
	bn.say("\n== summary (Markdown; value, ratio to direct)")
	head := "| figure |"
	sep := "|---|"
	for _, k := range bn.kinds {
		head += " " + k.name + " |"
		sep += "---|"
	}
	for _, k := range bn.kinds {
		if k.name != "direct" && k.name != "gateway" {
			head += " gateway ÷ " + k.name + " |"
			sep += "---|"
		}
	}
	bn.say("%s\n%s", head, sep)
	for _, r := range rs {
		med := results[r.key]
		direct := med["direct"]
		for c, cl := range r.cols {
			line := fmt.Sprintf("| %s %s |", r.key, cl.name)
			for _, k := range bn.kinds {
				m, ok := med[k.name]
				switch {
				case !ok:
					line += " — |"
				case direct != nil && k.name != "direct":
					line += fmt.Sprintf(" %s (%s) |", fmtVal(m[c], cl.prec), fmtRatio(ratio(m[c], direct[c])))
				default:
					line += " " + fmtVal(m[c], cl.prec) + " |"
				}
			}
			gw := med["gateway"]
			for _, k := range bn.kinds {
				if k.name == "direct" || k.name == "gateway" {
					continue
				}
				m, ok := med[k.name]
				if !ok || gw == nil {
					line += " — |"
					continue
				}
				line += " " + fmtRatio(ratio(gw[c], m[c])) + " |"
			}
			bn.say("%s", line)
		}
	}
}

// printGoals checks the figures against the goals of issue 5.
func (bn *bench) printGoals(res map[string]map[string][]float64) {
	bn.say("\n== goals")
	get := func(rowKey, kind string, c int) float64 {
		if m, ok := res[rowKey][kind]; ok {
			return m[c]
		}
		return math.NaN()
	}
	check := func(name string, ok bool, format string, args ...any) {
		verdict := "MISSED"
		if ok {
			verdict = "met"
		}
		bn.say("  %-7s %s: %s", verdict, name, fmt.Sprintf(format, args...))
	}
	maybe := func(rowKey string) bool { _, ok := res[rowKey]; return ok }
	if maybe("idle") {
		kb, fds := get("idle", "gateway", 0), get("idle", "gateway", 1)
		check("idle cost", kb <= 6 && fds <= 2.1, "%.1f KiB and %.2f fds per idle connection (goal ≤ 6 KiB, ≤ 2.1)", kb, fds)
	}
	if maybe("hold") {
		n := get("hold", "gateway", 0)
		check("hold", n >= float64(bn.o.hold), "%.0f of %d idle connections answering", n, bn.o.hold)
	}
	ge := func(rowKey, other string, c int, factor float64, what string) {
		gw, o := get(rowKey, "gateway", c), get(rowKey, other, c)
		if math.IsNaN(o) {
			bn.say("  n/a     %s: no figure for %s", what, other)
			return
		}
		check(what, gw >= factor*o, "gateway %.0f vs %s %.0f: %s (goal ≥ %.1f×)", gw, other, o, fmtRatio(ratio(gw, o)), factor)
	}
	le := func(rowKey, other string, c int, what string) {
		gw, o := get(rowKey, "gateway", c), get(rowKey, other, c)
		if math.IsNaN(o) {
			bn.say("  n/a     %s: no figure for %s", what, other)
			return
		}
		check(what, gw <= o, "gateway %.0f µs vs %s %.0f µs", gw, other, o)
	}
	if maybe("rr1") {
		ge("rr1", "haproxy", 0, 1.1, "rr1 ops/s vs haproxy")
		le("rr1", "haproxy", 2, "rr1 p99 vs haproxy")
		le("rr1", "etcd-gw", 2, "rr1 p99 vs etcd-gw")
	}
	if maybe("rr64") {
		ge("rr64", "etcd-gw", 0, 1.1, "rr64 ops/s vs etcd-gw")
		le("rr64", "haproxy", 2, "rr64 p99 vs haproxy")
		le("rr64", "etcd-gw", 2, "rr64 p99 vs etcd-gw")
	}
	if maybe("bulk") {
		ge("bulk", "haproxy", 0, 1, "bulk vs haproxy")
		ge("bulk", "etcd-gw", 0, 1, "bulk vs etcd-gw")
	}
	if maybe("connect") {
		ge("connect", "haproxy", 0, 1.1, "conns/s vs haproxy")
	}
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
