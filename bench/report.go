//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
)

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

// printRow prints r's medians, each with its ratio to direct, then the
// gateway's ratio to every other target.
func (bn *bench) printRow(r row, med map[string][]float64, notes map[string]string) {
	bn.say("  -- medians (ratio to direct in brackets)")
	for _, k := range bn.kinds {
		m, ok := med[k.name]
		if !ok {
			if r.proxiesOnly && k.launch == nil {
				continue
			}
			bn.say("  %-9s no figure: %s", k.name, notes[k.name])
			continue
		}
		bn.printMedians(r, k, m, med["direct"], notes[k.name])
	}
	bn.printVersus(r, med)
}

// printMedians prints k's medians m, each with its ratio to direct when
// there is a direct figure, and k's note.
func (bn *bench) printMedians(r row, k kind, m, direct []float64, note string) {
	var parts []string
	for c, cl := range r.cols {
		s := fmtVal(m[c], cl.prec) + " " + cl.name
		if direct != nil {
			s += " (" + fmtRatio(ratio(m[c], direct[c])) + ")"
		}
		parts = append(parts, s)
	}
	line := fmt.Sprintf("  %-9s %s", k.name, strings.Join(parts, ", "))
	if note != "" {
		line += "  [" + note + "]"
	}
	bn.say("%s", line)
}

// printVersus prints every proxy against every other one, the gateway
// first.
func (bn *bench) printVersus(r row, med map[string][]float64) {
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

// isProxy reports whether k is an external proxy (or baseline), which the
// summary compares the gateway with.
func isProxy(k kind) bool { return k.name != "direct" && k.name != "gateway" }

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
		if isProxy(k) {
			head += " gateway ÷ " + k.name + " |"
			sep += "---|"
		}
	}
	bn.say("%s\n%s", head, sep)
	for _, r := range rs {
		for c, cl := range r.cols {
			bn.say("%s", bn.summaryLine(r, c, cl, results[r.key]))
		}
	}
}

// summaryLine is the summary's line for column c of row r.
func (bn *bench) summaryLine(r row, c int, cl col, med map[string][]float64) string {
	direct := med["direct"]
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
		if !isProxy(k) {
			continue
		}
		m, ok := med[k.name]
		if !ok || gw == nil {
			line += " — |"
			continue
		}
		line += " " + fmtRatio(ratio(gw[c], m[c])) + " |"
	}
	return line
}
