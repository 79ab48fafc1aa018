package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// suspicionChecks is a listener block that runs the etcd check with the
// interval's defaults (5s, timeout 2s), a fall no load reaches and
// suspect-after 1s. These tests are about what a workload makes a member
// owe its clients, not about a starved host: the members run in the
// test's process, under -race, and on a loaded machine they may leave
// /health unanswered past the timeout twice, which the interval's checks
// rightly count, or /version unanswered past the default 500ms and its
// second question, which the suspicion rightly takes for a freeze (one
// run in several with a second test binary beside it). The suspicion's
// verdict ignores fall.
const suspicionChecks = "    health-check: {type: etcd, fall: 1000, suspect-after: 1s}\n"

// suspicionGateway starts a gateway in front of a three-member cluster
// with suspicionChecks and returns its listener and admin addresses
// and the members' addresses.
func suspicionGateway(t *testing.T) (addr, adminAddr string, members []string) {
	t.Helper()
	c := testutil.Cluster(t, 3)
	members = c.ClientAddrs()
	dir := t.TempDir()
	addr, adminAddr = testutil.ListenAddr(t), testutil.ListenAddr(t)
	startHarness(t, dir, dir+"/gw.yaml", withAdmin(adminAddr, "",
		render(listenerSpec{name: "main", addr: addr, endpoints: members, extra: suspicionChecks})))
	return addr, adminAddr, members
}

// suspicionTotals sums the members' checks on suspicion and frozen
// verdicts, and says whether every member is healthy.
func suspicionTotals(t *testing.T, adminAddr string) (checks, frozen uint64, healthy bool) {
	t.Helper()
	healthy = true
	for _, ep := range status(t, adminAddr).Listeners[0].Endpoints {
		checks, frozen = checks+ep.SuspicionChecks, frozen+ep.Frozen
		healthy = healthy && ep.Health == "healthy"
	}
	return checks, frozen, healthy
}

// assertUp fails the test when a member is unhealthy or was found frozen,
// and logs the checks on suspicion that what stopped cost.
func assertUp(t *testing.T, adminAddr, what string) uint64 {
	t.Helper()
	checks, frozen, healthy := suspicionTotals(t, adminAddr)
	t.Logf("%s: %d checks on suspicion, %d frozen verdicts", what, checks, frozen)
	if frozen != 0 || !healthy {
		for _, ep := range status(t, adminAddr).Listeners[0].Endpoints {
			t.Logf("%s: %s, %s", ep.Address, ep.Health, ep.Reason)
		}
		t.Fatalf("%s marked a member down", what)
	}
	return checks
}

// TestThousandPutsASecondKeepsTheMemberUp: a member that serves 1,000
// puts a second through the gateway for three seconds answers every
// client, so it is never found frozen.
func TestThousandPutsASecondKeepsTheMemberUp(t *testing.T) {
	addr, adminAddr, _ := suspicionGateway(t)
	const workers, rate, lasting = 50, 1000, 3 * time.Second
	var wg sync.WaitGroup
	var mu sync.Mutex
	done, failed := 0, 0
	start := time.Now()
	for w := range workers {
		cli := testutil.Client(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * workers / rate)
			defer tick.Stop()
			for i := 0; time.Since(start) < lasting; i++ {
				<-tick.C
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("load/%d/%d", w, i%100), "v")
				cancel()
				mu.Lock()
				done, failed = done+1, failed+boolCount(err != nil)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d puts in %s (%.0f/s), %d failed", done, took.Round(time.Millisecond), float64(done)/took.Seconds(), failed)
	if failed > 0 {
		t.Errorf("%d puts failed", failed)
	}
	assertUp(t, adminAddr, "1,000 puts a second")
}

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestHundredMegabyteRangeKeepsTheMemberUp: 100 puts of 1 MB through the
// gateway, which the member takes a while to apply (its /health may then
// answer after suspect-after), and a range of them, which it takes a while
// to gather and send, do not make it look frozen: a put that failed so
// would have had its connection closed.
func TestHundredMegabyteRangeKeepsTheMemberUp(t *testing.T) {
	addr, adminAddr, _ := suspicionGateway(t)
	cli := testutil.Client(t, addr)
	value := strings.Repeat("x", 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	for i := range 100 {
		if _, err := cli.Put(ctx, fmt.Sprintf("big/%03d", i), value); err != nil {
			assertUp(t, adminAddr, "a failed put")
			t.Fatalf("put %d: %v", i, err)
		}
	}
	t.Logf("100 puts of 1 MB through the gateway took %s", time.Since(start).Round(time.Millisecond))
	assertUp(t, adminAddr, "100 puts of 1 MB")
	start = time.Now()
	resp, err := testutil.Client(t, addr).Get(ctx, "big/", clientv3.WithPrefix())
	if err != nil {
		assertUp(t, adminAddr, "a failed range")
		t.Fatalf("range: %v", err)
	}
	t.Logf("a range of %d values of 1 MB took %s", len(resp.Kvs), time.Since(start).Round(time.Millisecond))
	if len(resp.Kvs) != 100 {
		t.Fatalf("range: %d values, want 100", len(resp.Kvs))
	}
	assertUp(t, adminAddr, "a 100 MB range")
}

// TestBlockingRPCsCostOneSuspicionCheckEach: a Lock waiting for another
// session's lock, a Campaign waiting for the leader's, and idle watches,
// each on a client of its own through the gateway, leave the member up,
// and cost at most one check on suspicion each, however long they wait.
func TestBlockingRPCsCostOneSuspicionCheckEach(t *testing.T) {
	addr, adminAddr, _ := suspicionGateway(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	holder, err := concurrency.NewSession(testutil.Client(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := concurrency.NewMutex(holder, "/lock").Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := concurrency.NewElection(holder, "/election").Campaign(ctx, "leader"); err != nil {
		t.Fatal(err)
	}
	streams := 0
	blocked := func(name string, call func(s *concurrency.Session) error) {
		s, err := concurrency.NewSession(testutil.Client(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		streams++
		go func() {
			if err := call(s); ctx.Err() == nil {
				t.Errorf("%s returned while it should block: %v", name, err)
			}
		}()
	}
	blocked("Lock", func(s *concurrency.Session) error { return concurrency.NewMutex(s, "/lock").Lock(ctx) })
	blocked("Campaign", func(s *concurrency.Session) error {
		return concurrency.NewElection(s, "/election").Campaign(ctx, "other")
	})
	for i := range 3 {
		cli := testutil.Client(t, addr)
		wch := cli.Watch(ctx, fmt.Sprintf("idle/%d", i))
		streams++
		go func() {
			for range wch {
			}
		}()
	}
	// Long enough for a check on suspicion of every stream and for the
	// sweeps to ask again if a passing check did not clear them.
	deadline := time.Now().Add(4 * time.Second)
	testutil.WaitFor(t, "4 s of sweeps", 10*time.Second, func() bool { return time.Now().After(deadline) })
	first := assertUp(t, adminAddr, "blocked Lock and Campaign, idle watches")
	if first > uint64(streams) {
		t.Errorf("%d checks on suspicion for %d waiting streams, want at most one each", first, streams)
	}
	deadline = time.Now().Add(3 * time.Second)
	testutil.WaitFor(t, "3 s more of sweeps", 10*time.Second, func() bool { return time.Now().After(deadline) })
	if again := assertUp(t, adminAddr, "3 s later"); again != first {
		t.Errorf("%d checks on suspicion 3 s later, want still %d: nothing new waits", again, first)
	}
}
