//go:build linux

package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

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

// rows returns the rows -rows asks for, in its order.
func rows(o options) []row {
	all := []row{
		rrRow(o, "rr1", 1, "1 connection"),
		rrRow(o, "rr64", o.conns, fmt.Sprintf("%d connections", o.conns)),
		pacedRow(o), bulkRow(o), connectRow(o), idleRow(o), holdRow(o),
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

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// withCPU runs f and returns, with its figures, the CPU time p used per
// unit of work (µs); NaN for direct.
func withCPU(p *proc, f func() (float64, []float64, error)) ([]float64, error) {
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

// rrRow is request/response at conns connections (described by what):
// ops/s, p50, p99.
func rrRow(o options, key string, conns int, what string) row {
	return row{key: key, title: fmt.Sprintf("request/response %d B, %s", o.size, what),
		cols: []col{{"ops/s", true, 0}, {"p50 µs", false, 0}, {"p99 µs", false, 0}, {"proxy CPU µs/op", false, 1}},
		run: func(addr string, p *proc) ([]float64, string, error) {
			figs, err := withCPU(p, func() (float64, []float64, error) {
				r, err := runRR(addr, conns, o.size, o.duration, 0)
				return float64(r.ops), []float64{r.opsPerSec, us(r.p50), us(r.p99)}, err
			})
			return figs, "", err
		}}
}

// pacedRow is a lightly loaded proxy, as most gateways on most hosts are:
// one connection, a round trip every -pace. Its figures are what the
// proxy's threads cost between events: CPU time and context switches per
// round trip.
func pacedRow(o options) row {
	return row{key: "paced", title: fmt.Sprintf("request/response %d B, 1 connection, one every %v", o.size, o.pace),
		proxiesOnly: true,
		cols:        []col{{"p50 µs", false, 0}, {"proxy switches/op", false, 2}, {"proxy CPU µs/op", false, 1}},
		run: func(addr string, p *proc) ([]float64, string, error) {
			switches := contextSwitches(p.pid())
			var ops float64
			figs, err := withCPU(p, func() (float64, []float64, error) {
				r, err := runRR(addr, 1, o.size, o.duration, o.pace)
				ops = float64(r.ops)
				return ops, []float64{us(r.p50)}, err
			})
			per := float64(contextSwitches(p.pid())-switches) / max(ops, 1)
			return slices.Insert(figs, 1, per), "", err
		}}
}

// bulkRow is a one-way bulk transfer from the backend: MB/s.
func bulkRow(o options) row {
	return row{key: "bulk", title: fmt.Sprintf("one-way bulk %d MiB, backend to client", o.bulkMiB),
		cols: []col{{"MB/s", true, 0}, {"proxy CPU ms/GB", false, 0}},
		run: func(addr string, p *proc) ([]float64, string, error) {
			figs, err := withCPU(p, func() (float64, []float64, error) {
				v, err := runBulk(addr, o.bulkMiB<<20)
				// µs per GB / 1000 = ms per GB
				return float64(o.bulkMiB<<20) / 1e9 * 1000, []float64{v}, err
			})
			return figs, "", err
		}}
}

// connectRow is connect, request, response, close: conns/s.
func connectRow(o options) row {
	return row{key: "connect", title: fmt.Sprintf("connect, %d B request, response, close; %d workers", o.connectSize, o.workers),
		cols: []col{{"conns/s", true, 0}, {"p50 µs", false, 0}, {"proxy CPU µs/conn", false, 1}},
		run: func(addr string, p *proc) ([]float64, string, error) {
			figs, err := withCPU(p, func() (float64, []float64, error) {
				r, err := runConnect(addr, o.workers, o.connectSize, o.duration)
				return float64(r.conns), []float64{r.perSec, us(r.p50)}, err
			})
			return figs, "", err
		}}
}

// idleRow is what -idle idle connections cost the proxy process.
func idleRow(o options) row {
	return row{key: "idle", title: fmt.Sprintf("%d idle connections: cost in the proxy process", o.idle), fresh: true, proxiesOnly: true,
		cols: []col{{"RSS KiB/conn", false, 1}, {"fds/conn", false, 2}, {"answering %", true, 1}},
		run: func(_ string, p *proc) ([]float64, string, error) {
			r, err := runIdle(p, o.idle, o.settle)
			return []float64{r.rssPerConn / 1024, r.fdsPerConn, 100 * float64(r.answered) / float64(o.idle)}, r.note(), err
		}}
}

// holdRow is whether the proxy holds -hold idle connections that all answer.
func holdRow(o options) row {
	return row{key: "hold", title: fmt.Sprintf("hold %d idle connections under the open-file limit, all answering", o.hold), fresh: true, proxiesOnly: true, rounds: 1,
		cols: []col{{"answering", true, 0}, {"fds/conn", false, 2}},
		run: func(_ string, p *proc) ([]float64, string, error) {
			r, err := runIdle(p, o.hold, o.settle)
			if err != nil {
				return []float64{0, math.NaN()}, err.Error(), nil
			}
			return []float64{float64(r.answered), r.fdsPerConn}, r.note(), nil
		}}
}

// note is the error that stopped opening the idle connections, or "".
func (r idleResult) note() string {
	if r.openErr != nil {
		return r.openErr.Error()
	}
	return ""
}
