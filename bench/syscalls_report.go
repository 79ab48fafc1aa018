//go:build linux

package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// printSyscalls prints every proxy's system calls per connection and per
// round trip as Markdown tables, then the system call goal of issue 18.
func (bn *bench) printSyscalls(res map[string]sysResult) {
	var names []string
	for _, k := range bn.kinds {
		if _, ok := res[k.name]; ok {
			names = append(names, k.name)
		}
	}
	conns, trips := float64(bn.o.sysConns), float64(bn.o.sysTrips)
	bn.say("\n== system calls per connection: counted ÷ %d connections (Markdown; failed calls in brackets)", bn.o.sysConns)
	bn.sysTable(names, res, connsOf, conns)
	bn.say("\n== system calls per round trip: counted ÷ %d round trips (Markdown; failed calls in brackets). A round trip is two hops: request and response", bn.o.sysTrips)
	bn.sysTable(names, res, tripsOf, trips)
	bn.sysTotals(names, res, "per hop", tripsOf, 2*trips)
	bn.say("\n== goals (issue 18)")
	bn.sysGoal(res, "system calls per connection", connsOf, conns)
	bn.sysGoal(res, "system calls per hop", tripsOf, 2*trips)
}

// connsOf and tripsOf pick a phase's counts out of a result.
func connsOf(r sysResult) sysCounts { return r.conns }
func tripsOf(r sysResult) sysCounts { return r.trips }

// sysTable prints one table: a line per system call, a column per proxy,
// each cell the calls made per op (ops of them counted in all).
func (bn *bench) sysTable(names []string, res map[string]sysResult, pick func(sysResult) sysCounts, ops float64) {
	bn.say("| system call | %s |\n|---|%s", strings.Join(names, " | "), strings.Repeat("---|", len(names)))
	for _, call := range callsByWeight(names, res, pick) {
		cells := make([]string, len(names))
		for i, n := range names {
			cells[i] = perOp(pick(res[n])[call], ops)
		}
		bn.say("| %s | %s |", call, strings.Join(cells, " | "))
	}
	bn.sysTotals(names, res, "**total**", pick, ops)
	cells := make([]string, len(names))
	for i, n := range names {
		cells[i] = fmt.Sprint(pick(res[n]).total().calls)
	}
	bn.say("| counted (calls) | %s |", strings.Join(cells, " | "))
}

// sysTotals prints a table line: every proxy's total calls per op.
func (bn *bench) sysTotals(names []string, res map[string]sysResult, label string, pick func(sysResult) sysCounts, ops float64) {
	cells := make([]string, len(names))
	for i, n := range names {
		cells[i] = perOp(pick(res[n]).total(), ops)
	}
	bn.say("| %s | %s |", label, strings.Join(cells, " | "))
}

// callsByWeight is every system call any proxy made, the most frequent
// (in the proxy that makes it most) first.
func callsByWeight(names []string, res map[string]sysResult, pick func(sysResult) sysCounts) []string {
	most := map[string]int{}
	for _, n := range names {
		for call, c := range pick(res[n]) {
			most[call] = max(most[call], c.calls)
		}
	}
	calls := slices.Collect(maps.Keys(most))
	slices.SortFunc(calls, func(a, b string) int {
		return cmp.Or(cmp.Compare(most[b], most[a]), cmp.Compare(a, b))
	})
	return calls
}

// perOp is c's calls per op, with its failed calls in brackets; "—" for
// none.
func perOp(c sysCount, ops float64) string {
	if c.calls == 0 {
		return "—"
	}
	s := perOpValue(c.calls, ops)
	if c.errors > 0 {
		s += " (" + perOpValue(c.errors, ops) + ")"
	}
	return s
}

// perOpValue is n ÷ ops to two decimals, "<0.01" rather than 0.00 for a
// few calls.
func perOpValue(n int, ops float64) string {
	if v := float64(n) / ops; v >= 0.005 {
		return fmt.Sprintf("%.2f", v)
	}
	return "<0.01"
}

// sysGoal checks that the gateway makes fewer system calls per op than
// HAProxy.
func (bn *bench) sysGoal(res map[string]sysResult, what string, pick func(sysResult) sysCounts, ops float64) {
	gw, okG := res["gateway"]
	hp, okH := res["haproxy"]
	if !okG || !okH {
		bn.say("  n/a     %s vs haproxy: no count for the gateway or haproxy", what)
		return
	}
	g, h := float64(pick(gw).total().calls)/ops, float64(pick(hp).total().calls)/ops
	verdict := "MISSED"
	if g < h {
		verdict = "met"
	}
	bn.say("  %-7s %s vs haproxy: gateway %.2f vs haproxy %.2f: %s (goal < 1.00×)", verdict, what, g, h, fmtRatio(ratio(g, h)))
}
