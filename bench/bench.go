//go:build linux

package main

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

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
			bn.runRound(r, bn.kinds[(i+round)%n], round, samples, notes)
		}
	}
	return medians(len(r.cols), samples), notes
}

// runRound runs r once for k, adding its figures to samples and any note
// or error to notes.
func (bn *bench) runRound(r row, k kind, round int, samples map[string][][]float64, notes map[string]string) {
	if r.proxiesOnly && k.launch == nil {
		return
	}
	figs, note, err := bn.runOne(r, k)
	if err != nil {
		bn.say("  %-9s round %d: error: %v", k.name, round+1, err)
		notes[k.name] = err.Error()
		return
	}
	if note != "" {
		notes[k.name] = note
	}
	samples[k.name] = append(samples[k.name], figs)
	bn.say("  %-9s round %d: %s", k.name, round+1, formatFigs(r.cols, figs))
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
	var figs []float64
	var note string
	err := bn.withFresh(k, func(p *proc) (err error) {
		figs, note, err = r.run(p.addr, p)
		return err
	})
	return figs, note, err
}

// withFresh starts a fresh instance of k, runs f with it, and stops it.
func (bn *bench) withFresh(k kind, f func(p *proc) error) error {
	p, err := k.launch(bn.dir, bn.b.addr())
	if err != nil {
		return err
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
	return f(p)
}

// medians is, per target, the median of each of ncols columns over its
// samples, NaNs left out.
func medians(ncols int, samples map[string][][]float64) map[string][]float64 {
	med := map[string][]float64{}
	for name, ss := range samples {
		m := make([]float64, ncols)
		for c := range ncols {
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
	return med
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
