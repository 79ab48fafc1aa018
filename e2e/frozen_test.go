//go:build linux

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// frozenGoal is issue 25's bound: a frozen member's clients are served by
// another member within it.
const frozenGoal = 2 * time.Second

// workload runs puts and linearizable gets through one client until
// stopped, and records when each succeeded.
type workload struct {
	cli *clientv3.Client
	mu  sync.Mutex
	ok  []time.Time
}

func (w *workload) run(ctx context.Context, id int) {
	for i := 0; ctx.Err() == nil; i++ {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if i%2 == 0 {
			_, err = w.cli.Put(octx, fmt.Sprintf("frozen/%d", id), fmt.Sprint(i))
		} else {
			_, err = w.cli.Get(octx, fmt.Sprintf("frozen/%d", id))
		}
		cancel()
		if err == nil {
			w.mu.Lock()
			w.ok = append(w.ok, time.Now())
			w.mu.Unlock()
		}
	}
}

// successesAfter counts the operations that succeeded after t.
func (w *workload) successesAfter(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, at := range w.ok {
		if at.After(t) {
			n++
		}
	}
	return n
}

// longestGap is the longest time between two successes, or from the last
// success before from to the first after it, among those around from.
func (w *workload) longestGap(from time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(w.ok); i++ {
		if w.ok[i].After(from) {
			gap = max(gap, w.ok[i].Sub(w.ok[i-1]))
		}
	}
	return gap
}

// TestFrozenMemberLeftWithinTwoSeconds is issue 25's frozen member: three
// etcd members in processes of their own, a child gateway with the
// default health checks (interval 5s, timeout 2s, fall 2), clients doing
// puts and linearizable gets through it; the member they use is stopped
// (SIGSTOP). Every client is served again within 2 s: the longest gap
// between two successful operations of a client is at most 2 s.
func TestFrozenMemberLeftWithinTwoSeconds(t *testing.T) {
	members := startMembers(t, 3)
	addr := testutil.ListenAddr(t)
	path := writeConfig(t, addr, strings.Join(memberAddrs(members), ", "), "")
	startChild(t, path, addr, 0)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var loads []*workload
	var wg sync.WaitGroup
	for i := range 3 {
		w := &workload{cli: testutil.Client(t, addr)}
		loads = append(loads, w)
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, i) }()
	}
	defer wg.Wait()
	defer cancel()
	start := time.Now()
	testutil.WaitFor(t, "every client to be served", 30*time.Second, func() bool {
		for _, w := range loads {
			if w.successesAfter(start) < 10 {
				return false
			}
		}
		return true
	})
	used := memberOf(t, loads[0].cli, members)
	t.Cleanup(func() { used.m.signal(t, syscall.SIGCONT) })
	used.m.signal(t, syscall.SIGSTOP)
	frozen := time.Now()
	testutil.WaitFor(t, "every client to be served after the freeze", 30*time.Second, func() bool {
		for _, w := range loads {
			if w.successesAfter(frozen.Add(frozenGoal)) < 10 {
				return false
			}
		}
		return true
	})
	for i, w := range loads {
		gap := w.longestGap(frozen)
		t.Logf("client %d: longest gap between successful operations %s (frozen member %s, the leader: %v)", i, gap.Round(time.Millisecond), used.m.config.Name, used.leader)
		if gap > frozenGoal {
			t.Errorf("client %d: %s without a successful operation, want at most %s", i, gap.Round(time.Millisecond), frozenGoal)
		}
	}
}

// usedMember is the member a client reaches, and whether it led.
type usedMember struct {
	m      *member
	leader bool
}

// memberOf finds the member cli's connection reaches through the gateway:
// the one that answers its Status.
func memberOf(t *testing.T, cli *clientv3.Client, members []*member) usedMember {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, cli.Endpoints()[0])
	if err != nil {
		t.Fatalf("Status through the gateway: %v", err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("MemberList through the gateway: %v", err)
	}
	for _, mm := range ml.Members {
		if mm.ID != st.Header.MemberId {
			continue
		}
		for _, m := range members {
			if m.config.Name == mm.Name {
				return usedMember{m: m, leader: st.Leader == mm.ID}
			}
		}
	}
	t.Fatalf("no member has ID %x", st.Header.MemberId)
	return usedMember{}
}
