//go:build linux

package e2e

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// robustnessDuration is how long the traffic runs under each fault of
// TestRobustness: short for CI, minutes for a soak (see doc.go).
var robustnessDuration = flag.Duration("robustness.duration", 5*time.Second, "how long TestRobustness runs its traffic under each fault")

const (
	// gatewayWatches is how many clients watch keyPrefix through the
	// gateway, each on a connection of its own.
	gatewayWatches = 2
	// catchUpTimeout bounds how long a watch may take, after the
	// traffic, to deliver the last revision.
	catchUpTimeout = 30 * time.Second
	// progressAfterFault is how many operations must succeed after a
	// fault before the next: the system serves again.
	progressAfterFault = 20
)

// TestRobustness runs etcd's kind of robustness test through the
// gateway: clients put, get and watch through a child gateway in front of
// three etcd members, each in a process of its own, while a fault
// strikes again and again; then the history must be linearizable, and
// every watch must have delivered each event of the members' log once,
// in order, and none other.
func TestRobustness(t *testing.T) {
	for _, f := range robustnessFaults() {
		t.Run(f.name, func(t *testing.T) { runRobustness(t, f) })
	}
}

// runRobustness runs the traffic under f for robustnessDuration (at
// least one injection), then checks what the clients saw.
func runRobustness(t *testing.T, f namedFault) {
	s := startSystem(t, f.moves)
	start := revision(t, s.members[0].addr()) + 1
	watches := startWatches(t, s.file.addr, start)
	tr := startTraffic(t, s.file.addr)
	tr.waitProgress(t, progressAfterFault, "before the first fault")
	began := time.Now()
	rounds := 0
	for rounds == 0 || time.Since(began) < *robustnessDuration {
		f.inject(t, s, rounds)
		rounds++
		tr.waitProgress(t, progressAfterFault, fmt.Sprintf("after fault %d", rounds))
	}
	history := tr.history()
	t.Logf("%d faults in %s", rounds, time.Since(began).Round(time.Millisecond))
	checkRun(t, s, history, watches, start)
}

// startWatches starts gatewayWatches watches of keyPrefix through the
// gateway at addr, from revision start, each with a client of its own;
// they stop at cleanup.
func startWatches(t *testing.T, addr string, start int64) []*watchLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	out := make([]*watchLog, gatewayWatches)
	for i := range out {
		out[i] = newWatchLog(start)
		cli := testutil.Client(t, addr)
		wg.Go(func() { out[i].run(ctx, cli) })
	}
	return out
}
