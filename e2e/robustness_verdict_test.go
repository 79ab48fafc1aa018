//go:build linux

package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// checkRun checks what a run recorded against the members' own event
// log, read after the traffic: each gateway watch, the puts clients were
// told succeeded, and the linearizability of the whole history.
func checkRun(t *testing.T, s *system, history []kvOp, watches []*watchLog, start int64) {
	t.Helper()
	addr := s.members[0].addr()
	final := revision(t, addr)
	log := membersLog(t, addr, start, final)
	report(t, "the members' watch", func(v *violations) { checkWatchOrder(v, log, start) })
	for i, w := range watches {
		report(t, fmt.Sprintf("gateway watch %d", i), func(v *violations) { checkGatewayWatch(v, w, log, final) })
	}
	applied := appliedValues(log)
	report(t, "history", func(v *violations) { checkAcknowledged(v, history, applied) })
	patched := patch(history, applied)
	if err := checkLinearizable(patched, t.ArtifactDir); err != nil {
		t.Errorf("linearizability: %v (go test -artifacts keeps the file)", err)
	}
	t.Logf("%d operations (%d puts of unknown outcome, %d of them applied), revisions %d to %d, %s",
		len(history), countUnknown(history), countUnknown(patched), start, final, watchSummary(watches))
}

// report runs check and fails t with each violation it found, named by
// what was checked.
func report(t *testing.T, what string, check func(*violations)) {
	t.Helper()
	var v violations
	check(&v)
	for _, line := range v.list() {
		t.Errorf("%s: %s", what, line)
	}
}

// checkGatewayWatch waits until w has delivered the final revision, then
// checks it on its own and against the members' log, over the revisions
// both saw.
func checkGatewayWatch(v *violations, w *watchLog, log []watchEvent, final int64) {
	reached := w.waitRev(final, catchUpTimeout)
	events, last := w.snapshot()
	checkWatchOrder(v, events, w.start)
	checkWatchReliable(v, events, log, w.start, min(last, final))
	if !reached {
		v.add("stalled", "delivered revisions up to %d of %d within %s", last, final, catchUpTimeout)
	}
}

// membersLog watches keyPrefix on the member at addr from start until it
// has delivered final, and returns what it delivered.
func membersLog(t *testing.T, addr string, start, final int64) []watchEvent {
	t.Helper()
	cli := testutil.Client(t, addr)
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := newWatchLog(start)
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, cli) }()
	reached := w.waitRev(final, catchUpTimeout)
	cancel()
	<-done
	events, last := w.snapshot()
	if !reached {
		t.Fatalf("the members' watch delivered revisions up to %d of %d within %s", last, final, catchUpTimeout)
	}
	return events
}

func countUnknown(history []kvOp) int {
	n := 0
	for _, op := range history {
		if op.unknown {
			n++
		}
	}
	return n
}

// watchSummary says how many events each gateway watch delivered, how
// often it was made again, and the last error it was told.
func watchSummary(watches []*watchLog) string {
	s := "gateway watches:"
	for _, w := range watches {
		w.mu.Lock()
		s += fmt.Sprintf(" %d events (%d restarts", len(w.events), w.restarts)
		if w.err != nil {
			s += fmt.Sprintf(", last error %v", w.err)
		}
		s += ")"
		w.mu.Unlock()
	}
	return s
}
