package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestAddAndRemoveMember(t *testing.T) {
	c, err := Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	i, err := c.AddMember()
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	if got := memberCount(t, c.Members[i].ClientAddr()); got != 2 {
		t.Fatalf("the added member sees %d members, want 2", got)
	}
	l, err := c.AddLearner()
	if err != nil {
		t.Fatalf("AddLearner: %v", err)
	}
	if n, learners := members(t, c.Members[0].ClientAddr()); n != 3 || learners != 1 {
		t.Fatalf("after AddLearner: %d members, %d learners; want 3 and 1", n, learners)
	}
	if err := c.RemoveMember(l); err != nil {
		t.Fatalf("RemoveMember(learner): %v", err)
	}
	if err := c.RemoveMember(i); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if c.Members[i].Running() {
		t.Fatal("the removed member still runs")
	}
	if got := memberCount(t, c.Members[0].ClientAddr()); got != 1 {
		t.Fatalf("after the removal the cluster has %d members, want 1", got)
	}
	if addrs := c.ClientAddrs(); len(addrs) != 1 || addrs[0] != c.Members[0].ClientAddr() {
		t.Fatalf("ClientAddrs after the removal: %v", addrs)
	}
}

func memberCount(t *testing.T, addr string) int {
	t.Helper()
	n, _ := members(t, addr)
	return n
}

// members returns the number of members and of learners addr reports.
func members(t *testing.T, addr string) (n, learners int) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("MemberList through %s: %v", addr, err)
	}
	for _, m := range resp.Members {
		if m.IsLearner {
			learners++
		}
	}
	return len(resp.Members), learners
}
