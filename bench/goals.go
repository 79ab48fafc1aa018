//go:build linux

package main

import (
	"fmt"
	"math"
)

// goals checks the medians of a run, row → kind → column, against the
// goals of issue 18.
type goals struct {
	bn  *bench
	res map[string]map[string][]float64
}

// printGoals checks the figures against the goals of issue 18, each a
// ratio of two medians of this run, so that a noisy machine moves both.
func (bn *bench) printGoals(res map[string]map[string][]float64) {
	bn.say("\n== goals (issue 18)")
	g := goals{bn: bn, res: res}
	g.idle()
	g.rr("rr1", 1.3)
	g.rr("rr64", 1.1)
	g.bulk()
	if g.has("connect") {
		g.vs("connect", "haproxy", 0, 1.15, true, "conns/s vs haproxy")
		g.vs("connect", "haproxy", 2, 0.85, false, "proxy CPU µs/conn vs haproxy")
	}
}

// rr checks a request/response row: ops/s at least factor times HAProxy's,
// p99 no worse than HAProxy's.
func (g goals) rr(key string, factor float64) {
	if !g.has(key) {
		return
	}
	g.vs(key, "haproxy", 0, factor, true, key+" ops/s vs haproxy")
	g.vs(key, "haproxy", 2, 1, false, key+" p99 µs vs haproxy")
}

// bulk checks that the gateway moves bulk at least 1.3 times as fast as the
// fastest of the other proxies.
func (g goals) bulk() {
	if !g.has("bulk") {
		return
	}
	best := ""
	for _, o := range []string{"haproxy", "etcd-gw"} { // the other projects' proxies
		if v := g.get("bulk", o, 0); !math.IsNaN(v) && (best == "" || v > g.get("bulk", best, 0)) {
			best = o
		}
	}
	if best == "" {
		g.bn.say("  n/a     bulk vs the best proxy: no other proxy ran")
		return
	}
	g.vs("bulk", best, 0, 1.3, true, "bulk MB/s vs the best proxy ("+best+")")
}

// idle checks the gateway's idle cost and the connections it held.
func (g goals) idle() {
	if g.has("idle") {
		kb, fds := g.get("idle", "gateway", 0), g.get("idle", "gateway", 1)
		g.check("idle cost", kb <= 4 && fds <= 2.05, "%.1f KiB and %.2f fds per idle connection (goal ≤ 4 KiB, ≤ 2.05)", kb, fds)
	}
	if g.has("hold") {
		n := g.get("hold", "gateway", 0)
		g.check("hold", n >= float64(g.bn.o.hold), "%.0f of %d idle connections answering", n, g.bn.o.hold)
	}
}

// has reports whether the row ran.
func (g goals) has(rowKey string) bool { _, ok := g.res[rowKey]; return ok }

// get is the median of column c of the row for kind, or NaN.
func (g goals) get(rowKey, kind string, c int) float64 {
	if m, ok := g.res[rowKey][kind]; ok {
		return m[c]
	}
	return math.NaN()
}

func (g goals) check(name string, ok bool, format string, args ...any) {
	verdict := "MISSED"
	if ok {
		verdict = "met"
	}
	g.bn.say("  %-7s %s: %s", verdict, name, fmt.Sprintf(format, args...))
}

// vs checks the gateway's figure in column c against factor times other's:
// at least that when higher is better, at most that otherwise.
func (g goals) vs(rowKey, other string, c int, factor float64, higher bool, what string) {
	gw, o := g.get(rowKey, "gateway", c), g.get(rowKey, other, c)
	if math.IsNaN(o) || math.IsNaN(gw) {
		g.bn.say("  n/a     %s: no figure for the gateway or %s", what, other)
		return
	}
	ok, op := gw <= factor*o, "≤"
	if higher {
		ok, op = gw >= factor*o, "≥"
	}
	g.check(what, ok, "gateway %.1f vs %s %.1f: %s (goal %s %.2f×)", gw, other, o, fmtRatio(ratio(gw, o)), op, factor)
}
