//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// etcdRounds is the number of handovers under a watch and a lease.
const etcdRounds = 10

// TestUpgradeEtcdWatchAndLease holds a clientv3 client with a watch and a
// lease keep-alive through ten handovers: it stays on its one TCP connection to the member (a relay in front
// of the member counts the connections), its watch sees every write made
// meanwhile, in order, and its lease is kept.
func TestUpgradeEtcdWatchAndLease(t *testing.T) {
	cluster := testutil.Cluster(t, 1)
	member := cluster.ClientAddrs()[0]
	relay := testutil.Relay(t, "127.0.0.1:0", member)
	addr, probeAddr := testutil.ListenAddr(t), testutil.ListenAddr(t)
	probe := testutil.Echo(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "upgrade.sock")
	path := filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`log-level: info
log-format: json
upgrade-socket: %s
health-check: {type: none}
listeners:
  - {name: etcd, listen-addr: %q, endpoints: [%q]}
  - {name: probe, listen-addr: %q, endpoints: [%q]}
`, sock, addr, relay.Addr, probeAddr, probe.Addr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := startUpgradable(t, path, probeAddr, sock)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := testutil.Client(t, addr)
	direct := testutil.Client(t, member)
	lease, err := cli.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	kas, err := cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	first, err := cli.Put(ctx, "k/first", "0", clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	watch := cli.Watch(ctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision+1))
	if relay.Accepted() != 1 {
		t.Fatalf("the member saw %d connections, want 1", relay.Accepted())
	}

	// Writes go straight to the member, the client watches through the
	// gateway.
	var mu sync.Mutex
	var writes []int64
	stopWrites := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopWrites:
				writerDone <- nil
				return
			default:
			}
			r, err := direct.Put(ctx, fmt.Sprintf("k/%d", i), "v")
			if err != nil {
				writerDone <- err
				return
			}
			mu.Lock()
			writes = append(writes, r.Header.Revision)
			mu.Unlock()
		}
	}()
	var keepAlives int
	drainKeepAlives := func() {
		for {
			select {
			case _, ok := <-kas:
				if !ok {
					t.Fatal("the lease keep-alive channel closed")
				}
				keepAlives++
			default:
				return
			}
		}
	}
	for round := range etcdRounds {
		next := startChild(t, path, probeAddr, 0)
		next.tookOver(t)
		gw.waitExit(t, fmt.Sprintf("the old gateway of handover %d", round+1))
		gw = next
		drainKeepAlives()
	}
	close(stopWrites)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	want := writes // the writer is done
	if len(want) == 0 {
		t.Fatal("no writes during the handovers")
	}
	// Every write, in order, and nothing else.
	var got []int64
	for len(got) < len(want) {
		select {
		case wr, ok := <-watch:
			if !ok || wr.Err() != nil {
				t.Fatalf("watch ended after %d of %d events: %v", len(got), len(want), wr.Err())
			}
			for _, ev := range wr.Events {
				got = append(got, ev.Kv.ModRevision)
			}
		case <-ctx.Done():
			t.Fatalf("watch: %d of %d events", len(got), len(want))
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("watch event %d at revision %d, want %d", i, got[i], want[i])
		}
	}
	// The lease lives: keep-alives still answered through the gateway.
	testutil.WaitFor(t, "a keep-alive after the handovers", 10*time.Second, func() bool {
		drainKeepAlives()
		return keepAlives > 0
	})
	ttl, err := direct.TimeToLive(ctx, lease.ID)
	if err != nil || ttl.TTL <= 0 {
		t.Fatalf("lease after the handovers: %+v, %v", ttl, err)
	}
	if _, err := cli.Get(ctx, "k/first"); err != nil {
		t.Fatal(err)
	}
	if n := relay.Accepted(); n != 1 {
		t.Errorf("the member saw %d connections, want 1: the client's connection was not kept", n)
	}
	t.Logf("%d writes watched, %d keep-alives, through %d handovers", len(want), keepAlives, etcdRounds)
	cli.Close()
	if err := gw.stop(t); err != nil {
		t.Fatal(err)
	}
}
