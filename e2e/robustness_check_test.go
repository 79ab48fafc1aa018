//go:build linux

package e2e

import (
	"fmt"
	"maps"
	"slices"
)

// watchEvent is one event a watch delivered.
type watchEvent struct {
	rev        int64
	key, value string
	delete     bool // the traffic deletes nothing: a delete is news
}

// maxViolations bounds how many violations of one kind a check reports:
// the first few say what went wrong, a thousand more say nothing new.
const maxViolations = 10

// violations collects what a check found, the first maxViolations of
// each kind and a count of all.
type violations struct {
	found  []string
	counts map[string]int
}

func (v *violations) add(kind, format string, args ...any) {
	if v.counts == nil {
		v.counts = map[string]int{}
	}
	v.counts[kind]++
	if v.counts[kind] <= maxViolations {
		v.found = append(v.found, kind+": "+fmt.Sprintf(format, args...))
	}
}

// list returns the violations found, with the count of each kind that
// had more than were listed.
func (v *violations) list() []string {
	out := v.found
	for _, kind := range slices.Sorted(maps.Keys(v.counts)) {
		if n := v.counts[kind]; n > maxViolations {
			out = append(out, fmt.Sprintf("%s: %d in all", kind, n))
		}
	}
	return out
}

// checkWatchOrder checks what one watch delivered: every event once
// (unique), at a revision above the one before (ordered), none before
// the revision the watch started from, and no delete (the traffic makes
// none).
func checkWatchOrder(v *violations, events []watchEvent, start int64) {
	seen := map[int64]bool{}
	var prev int64
	for i, e := range events {
		switch {
		case seen[e.rev]:
			v.add("duplicate", "event %d is revision %d again", i, e.rev)
		case e.rev < prev:
			v.add("out of order", "event %d is revision %d, after %d", i, e.rev, prev)
		}
		if e.rev < start {
			v.add("before start", "event %d is revision %d, the watch started at %d", i, e.rev, start)
		}
		if e.delete {
			v.add("delete", "event %d deletes %s at revision %d", i, e.key, e.rev)
		}
		seen[e.rev] = true
		prev = max(prev, e.rev)
	}
}

// checkWatchReliable compares what a gateway watch delivered with what
// a watch of the members delivered, over the revisions from start to
// last (the last that both saw): every event of the members', with its
// key and value, and no other (reliable: none lost, none made up).
func checkWatchReliable(v *violations, got, want []watchEvent, start, last int64) {
	inRange := func(e watchEvent) bool { return e.rev >= start && e.rev <= last }
	gotAt := map[int64]watchEvent{}
	for _, e := range got {
		if inRange(e) {
			gotAt[e.rev] = e
		}
	}
	wantAt := map[int64]watchEvent{}
	for _, e := range want {
		if !inRange(e) {
			continue
		}
		wantAt[e.rev] = e
		g, ok := gotAt[e.rev]
		switch {
		case !ok:
			v.add("lost", "revision %d (%s=%s) never delivered", e.rev, e.key, e.value)
		case g != e:
			v.add("changed", "revision %d delivered as %s=%s, the members say %s=%s", e.rev, g.key, g.value, e.key, e.value)
		}
	}
	for rev, g := range gotAt {
		if _, ok := wantAt[rev]; !ok {
			v.add("made up", "revision %d (%s=%s) delivered, the members have no such event", rev, g.key, g.value)
		}
	}
}

// appliedValues maps every value in the members' event log to the
// revision that wrote it (the traffic's values are unique).
func appliedValues(log []watchEvent) map[string]int64 {
	out := make(map[string]int64, len(log))
	for _, e := range log {
		out[e.value] = e.rev
	}
	return out
}

// checkAcknowledged checks that every put a client was told succeeded is
// in the members' event log, at the revision the client was told.
func checkAcknowledged(v *violations, history []kvOp, applied map[string]int64) {
	for _, op := range history {
		if !op.put || op.unknown {
			continue
		}
		switch rev, ok := applied[op.value]; {
		case !ok:
			v.add("acknowledged put lost", "%s is not in the members' log", op)
		case rev != op.rev:
			v.add("acknowledged put moved", "%s is at revision %d in the members' log", op, rev)
		}
	}
}
