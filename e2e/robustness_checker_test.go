//go:build linux

package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// historyCase is a hand-made history and whether it is linearizable.
type historyCase struct {
	name    string
	history []kvOp
	applied map[string]int64 // the members' log, for the unknown puts
	ok      bool
}

// Hand-made operations of a client on the traffic's clock.
func opPut(client int, key, value string, rev, call, ret int64) kvOp {
	return kvOp{client: client, put: true, key: key, value: value, rev: rev, call: call, ret: ret}
}

func opGet(client int, key, value string, rev, call, ret int64) kvOp {
	return kvOp{client: client, key: key, value: value, found: rev != 0, rev: rev, call: call, ret: ret}
}

func opUnknown(client int, key, value string, call int64) kvOp {
	return kvOp{client: client, put: true, key: key, value: value, unknown: true, call: call, ret: call + 1}
}

// historyCases are linearizable histories, and histories that break the
// model in each way it can be broken.
func historyCases() []historyCase {
	return []historyCase{
		{"reads after writes", []kvOp{
			opGet(0, "a", "", 0, 0, 5),
			opPut(0, "a", "1", 2, 10, 20),
			opGet(1, "a", "1", 2, 30, 40),
			opPut(1, "b", "2", 3, 30, 40),
			opGet(0, "b", "2", 3, 50, 60),
		}, nil, true},
		{"a read concurrent with a write sees either", []kvOp{
			opPut(0, "a", "1", 2, 0, 10),
			opPut(0, "a", "2", 3, 20, 40),
			opGet(1, "a", "1", 2, 25, 30),
			opGet(2, "a", "2", 3, 26, 31),
		}, nil, true},
		{"an unknown put applied, read later", []kvOp{
			opUnknown(0, "a", "1", 0),
			opGet(1, "a", "1", 2, 100, 110),
		}, map[string]int64{"1": 2}, true},
		{"a stale read", []kvOp{
			opPut(0, "a", "1", 2, 0, 10),
			opPut(0, "a", "2", 3, 20, 30),
			opGet(1, "a", "1", 2, 40, 50),
		}, nil, false},
		{"a read of a value never written", []kvOp{
			opPut(0, "a", "1", 2, 0, 10),
			opGet(1, "a", "x", 2, 20, 30),
		}, nil, false},
		{"a read of an unknown put never applied", []kvOp{
			opUnknown(0, "a", "1", 0),
			opGet(1, "a", "1", 2, 100, 110),
		}, map[string]int64{}, false},
		{"revisions against real time", []kvOp{
			opPut(0, "a", "1", 3, 0, 10),
			opPut(1, "a", "2", 2, 20, 30),
		}, nil, false},
		{"a value read back at another revision", []kvOp{
			opPut(0, "a", "1", 2, 0, 10),
			opGet(1, "a", "1", 4, 20, 30),
		}, nil, false},
	}
}

// TestRobustnessCheckerLinearizability feeds the linearizability check
// hand-made histories: the checks of TestRobustness must be able to fail,
// and say where porcupine drew the history.
func TestRobustnessCheckerLinearizability(t *testing.T) {
	for _, c := range historyCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			err := checkLinearizable(patch(c.history, c.applied), func() string { return dir })
			switch {
			case c.ok && err != nil:
				t.Fatalf("a linearizable history was refused: %v", err)
			case !c.ok && err == nil:
				t.Fatal("a history that is not linearizable passed")
			case !c.ok:
				wantVisualization(t, err, filepath.Join(dir, "linearizability.html"))
			}
		})
	}
}

// wantVisualization fails t unless err names path and the file is there.
func wantVisualization(t *testing.T, err error, path string) {
	t.Helper()
	if !strings.Contains(err.Error(), path) {
		t.Errorf("the error does not name the visualization %s: %v", path, err)
	}
	if fi, statErr := os.Stat(path); statErr != nil || fi.Size() == 0 {
		t.Errorf("no visualization at %s: %v", path, statErr)
	}
}

// TestRobustnessCheckerWatch feeds the watch checks hand-made watches
// against a members' log of revisions 2 to 5.
func TestRobustnessCheckerWatch(t *testing.T) {
	ev := func(rev int64, value string) watchEvent {
		return watchEvent{rev: rev, key: "k0", value: value}
	}
	log := []watchEvent{ev(2, "a"), ev(3, "b"), ev(4, "c"), ev(5, "d")}
	cases := []struct {
		name  string
		got   []watchEvent
		start int64
		want  map[string]int // violations by kind
	}{
		{"every event", log, 2, map[string]int{}},
		{"resumed from a later revision", log[1:], 3, map[string]int{}},
		{"a gap", []watchEvent{ev(2, "a"), ev(4, "c"), ev(5, "d")}, 2, map[string]int{"lost": 1}},
		{"a duplicate", []watchEvent{ev(2, "a"), ev(3, "b"), ev(3, "b"), ev(4, "c"), ev(5, "d")}, 2, map[string]int{"duplicate": 1}},
		{"out of order", []watchEvent{ev(2, "a"), ev(4, "c"), ev(3, "b"), ev(5, "d")}, 2, map[string]int{"out of order": 1}},
		{"a changed value", []watchEvent{ev(2, "a"), ev(3, "x"), ev(4, "c"), ev(5, "d")}, 2, map[string]int{"changed": 1}},
		{"an event made up", []watchEvent{ev(2, "a"), ev(3, "b"), ev(4, "c"), ev(5, "d"), ev(6, "e")}, 2, map[string]int{"made up": 1}},
		{"an event before the start", log, 3, map[string]int{"before start": 1}},
		{"a delete", []watchEvent{ev(2, "a"), ev(3, "b"), ev(4, "c"), {rev: 5, key: "k0", delete: true}}, 2, map[string]int{"delete": 1, "changed": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v violations
			checkWatchOrder(&v, c.got, c.start)
			checkWatchReliable(&v, c.got, log, c.start, 6)
			if !maps.Equal(v.counts, c.want) {
				t.Fatalf("violations %v, want %v: %q", v.counts, c.want, v.list())
			}
		})
	}
}

// TestRobustnessCheckerAcknowledged checks that a put the client was
// told succeeded, but that is missing from the members' log or at another
// revision there, is reported, and that an unknown one is not.
func TestRobustnessCheckerAcknowledged(t *testing.T) {
	history := []kvOp{
		{put: true, key: "a", value: "1", rev: 2},
		{put: true, key: "a", value: "2", rev: 3},
		{put: true, key: "a", value: "3", rev: 4},
		{put: true, key: "a", value: "4", unknown: true},
		{key: "a", value: "5", found: true, rev: 9},
	}
	var v violations
	checkAcknowledged(&v, history, appliedValues([]watchEvent{{rev: 2, value: "1"}, {rev: 5, value: "3"}}))
	want := map[string]int{"acknowledged put lost": 1, "acknowledged put moved": 1}
	if !maps.Equal(v.counts, want) {
		t.Fatalf("violations %v, want %v: %q", v.counts, want, v.list())
	}
}
