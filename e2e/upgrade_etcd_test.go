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
	e := startEtcdGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.watchWithLease(t, ctx)
	e.startWriter(t, ctx)
	e.handOverRounds(t)
	want := e.stopWriter(t)
	e.checkWatch(t, ctx, want)
	e.checkLease(t, ctx)
	t.Logf("%d writes watched, %d keep-alives, through %d handovers", len(want), e.keepAlives, etcdRounds)
	e.cli.Close()
	if err := e.gw.stop(t); err != nil {
		t.Fatal(err)
	}
}

// etcdWatch is TestUpgradeEtcdWatchAndLease's gateway, its client through
// the gateway with a watch and a lease, and a writer straight to the
// member.
type etcdWatch struct {
	member, addr, probeAddr, path string
	relay                         *testutil.Server // counts the connections to the member
	gw                            *child
	cli, direct                   *clientv3.Client
	lease                         *clientv3.LeaseGrantResponse
	kas                           <-chan *clientv3.LeaseKeepAliveResponse
	watch                         clientv3.WatchChan
	keepAlives                    int
	mu                            sync.Mutex
	writes                        []int64
	stopWrites                    chan struct{}
	writerDone                    chan error
}

// startEtcdGateway starts a one-member cluster, a relay in front of it and
// a gateway with a listener to the relay and a probe listener.
func startEtcdGateway(t *testing.T) *etcdWatch {
	t.Helper()
	e := &etcdWatch{}
	cluster := testutil.Cluster(t, 1)
	e.member = cluster.ClientAddrs()[0]
	e.relay = testutil.Relay(t, "127.0.0.1:0", e.member)
	e.addr, e.probeAddr = testutil.ListenAddr(t), testutil.ListenAddr(t)
	probe := testutil.Echo(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "upgrade.sock")
	e.path = filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`log-level: info
log-format: json
upgrade-socket: %s
health-check: {type: none}
listeners:
  - {name: etcd, listen-addr: %q, endpoints: [%q]}
  - {name: probe, listen-addr: %q, endpoints: [%q]}
`, sock, e.addr, e.relay.Addr, e.probeAddr, probe.Addr)
	if err := os.WriteFile(e.path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.gw = startUpgradable(t, e.path, e.probeAddr, sock)
	return e
}

// watchWithLease opens the clients, grants a kept-alive lease, puts a key
// with it and watches the keys after it, on the client's one connection.
func (e *etcdWatch) watchWithLease(t *testing.T, ctx context.Context) {
	t.Helper()
	e.cli = testutil.Client(t, e.addr)
	e.direct = testutil.Client(t, e.member)
	lease, err := e.cli.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	e.lease = lease
	e.kas, err = e.cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.cli.Put(ctx, "k/first", "0", clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	e.watch = e.cli.Watch(ctx, "k/", clientv3.WithPrefix(), clientv3.WithRev(first.Header.Revision+1))
	if e.relay.Accepted() != 1 {
		t.Fatalf("the member saw %d connections, want 1", e.relay.Accepted())
	}
}

// startWriter writes keys straight to the member, the client watches
// through the gateway, until stopWriter.
func (e *etcdWatch) startWriter(t *testing.T, ctx context.Context) {
	t.Helper()
	e.stopWrites = make(chan struct{})
	e.writerDone = make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-e.stopWrites:
				e.writerDone <- nil
				return
			default:
			}
			r, err := e.direct.Put(ctx, fmt.Sprintf("k/%d", i), "v")
			if err != nil {
				e.writerDone <- err
				return
			}
			e.mu.Lock()
			e.writes = append(e.writes, r.Header.Revision)
			e.mu.Unlock()
		}
	}()
}

// drainKeepAlives counts the keep-alive answers so far.
func (e *etcdWatch) drainKeepAlives(t *testing.T) {
	t.Helper()
	for {
		select {
		case _, ok := <-e.kas:
			if !ok {
				t.Fatal("the lease keep-alive channel closed")
			}
			e.keepAlives++
		default:
			return
		}
	}
}

// handOverRounds runs the handovers while the writer writes.
func (e *etcdWatch) handOverRounds(t *testing.T) {
	t.Helper()
	for round := range etcdRounds {
		e.gw = e.gw.handOver(t, e.path, e.probeAddr, round)
		e.drainKeepAlives(t)
	}
}

// stopWriter stops the writer and returns the revisions it wrote.
func (e *etcdWatch) stopWriter(t *testing.T) []int64 {
	t.Helper()
	close(e.stopWrites)
	if err := <-e.writerDone; err != nil {
		t.Fatal(err)
	}
	want := e.writes // the writer is done
	if len(want) == 0 {
		t.Fatal("no writes during the handovers")
	}
	return want
}

// checkWatch wants the watch to see every write, in order, and nothing
// else.
func (e *etcdWatch) checkWatch(t *testing.T, ctx context.Context, want []int64) {
	t.Helper()
	var got []int64
	for len(got) < len(want) {
		select {
		case wr, ok := <-e.watch:
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
}

// checkLease wants the lease alive, keep-alives still answered through the
// gateway, and the client still on its one connection to the member.
func (e *etcdWatch) checkLease(t *testing.T, ctx context.Context) {
	t.Helper()
	testutil.WaitFor(t, "a keep-alive after the handovers", 10*time.Second, func() bool {
		e.drainKeepAlives(t)
		return e.keepAlives > 0
	})
	ttl, err := e.direct.TimeToLive(ctx, e.lease.ID)
	if err != nil || ttl.TTL <= 0 {
		t.Fatalf("lease after the handovers: %+v, %v", ttl, err)
	}
	if _, err := e.cli.Get(ctx, "k/first"); err != nil {
		t.Fatal(err)
	}
	if n := e.relay.Accepted(); n != 1 {
		t.Errorf("the member saw %d connections, want 1: the client's connection was not kept", n)
	}
}
