package gateway

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestMemberSyncThroughTheConfigFile: a listener with member-sync follows
// the cluster's membership with no edit of the file, a reload of the file
// keeps the synced member, and a member removed from the cluster leaves.
func TestMemberSyncThroughTheConfigFile(t *testing.T) {
	c := testutil.Cluster(t, 1)
	put(t, c, "k", "v")
	seed := c.ClientAddrs()[0]
	dir := t.TempDir()
	addr := testutil.ListenAddr(t)
	extra := "    member-sync: 100ms\n    health-check: {interval: 100ms, timeout: 100ms}\n"
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), render(listenerSpec{name: "main", addr: addr, endpoints: []string{seed}, extra: extra}))

	i, err := c.AddMember()
	if err != nil {
		t.Fatal(err)
	}
	added := c.Members[i].ClientAddr()
	both := sorted([]string{seed, added})
	testutil.WaitFor(t, "the added member to join the listener's pool", 10*time.Second, func() bool { return slices.Equal(h.endpoints("main"), both) })

	// A reload that changes the listener keeps the synced member.
	saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: addr, endpoints: []string{seed}, extra: extra + "    retry-delay: 2h\n"}))
	h.waitApplied(1)
	if got := h.endpoints("main"); !slices.Equal(got, both) {
		t.Fatalf("after the reload the pool has %v, want %v", got, both)
	}
	if got := getValue(t, addr, "k"); got != "v" {
		t.Fatalf("read %q through the gateway", got)
	}

	if err := c.RemoveMember(i); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the removed member to leave the pool", 10*time.Second, func() bool { return slices.Equal(h.endpoints("main"), []string{seed}) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := testutil.Client(t, addr).Put(ctx, "k", "w"); err != nil {
		t.Fatalf("put through the gateway after the removal: %v", err)
	}
}
