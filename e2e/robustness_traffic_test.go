//go:build linux

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/time/rate"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// The traffic: a few clients through the gateway, each putting unique
// values to and reading a few keys, paced together as etcd's robustness
// traffic is, so that a long run's history stays small enough to check.
const (
	trafficClients = 4
	trafficKeys    = 5
	trafficRate    = 100 // operations per second, all clients together
	// opTimeout bounds one operation: a client held by a frozen member
	// gives up, and its put's outcome is unknown.
	opTimeout = 2 * time.Second
	// keyPrefix holds every key of the traffic: the watches watch it.
	keyPrefix = "/robustness/"
)

// traffic is the clients' work while the faults run, and its record.
type traffic struct {
	start time.Time
	stop  context.CancelFunc
	wg    sync.WaitGroup
	ops   [trafficClients][]kvOp // one slice per client, merged at the end
	done  atomic.Int64           // operations that succeeded
}

// startTraffic starts the clients, each with a clientv3 client of addr of
// its own (one connection through the gateway each).
func startTraffic(t *testing.T, addr string) *traffic {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{start: time.Now(), stop: cancel}
	pace := rate.NewLimiter(trafficRate, 1)
	for i := range trafficClients {
		cli := testutil.Client(t, addr)
		tr.wg.Go(func() { tr.run(ctx, i, cli, pace) })
	}
	t.Cleanup(tr.end)
	return tr
}

// now is the time since the traffic started: the histories' clock.
func (tr *traffic) now() int64 { return int64(time.Since(tr.start)) }

// run is client i's loop until the traffic stops: a put or a get, in
// turn at random, of a key at random.
func (tr *traffic) run(ctx context.Context, i int, cli *clientv3.Client, pace *rate.Limiter) {
	for n := 0; pace.Wait(ctx) == nil; n++ {
		key := fmt.Sprintf("%sk%d", keyPrefix, rand.IntN(trafficKeys))
		var op kvOp
		var ok bool
		if rand.IntN(2) == 0 {
			op, ok = tr.put(cli, key, fmt.Sprintf("c%d-%d", i, n))
		} else {
			op, ok = tr.get(cli, key)
		}
		if ok {
			op.client = i
			tr.ops[i] = append(tr.ops[i], op)
		}
	}
}

// put writes value to key. A put that fails may have been applied all
// the same (clientv3 doesn't retry a write it has sent): its outcome is
// unknown.
func (tr *traffic) put(cli *clientv3.Client, key, value string) (kvOp, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	op := kvOp{put: true, key: key, value: value, call: tr.now()}
	resp, err := cli.Put(ctx, key, value)
	op.ret = tr.now()
	if err != nil {
		op.unknown = true
		return op, true
	}
	op.rev = resp.Header.Revision
	tr.done.Add(1)
	return op, true
}

// get reads key, linearizable. A failed get tells nothing: it is left
// out of the history.
func (tr *traffic) get(cli *clientv3.Client, key string) (kvOp, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	op := kvOp{key: key, call: tr.now()}
	resp, err := cli.Get(ctx, key)
	op.ret = tr.now()
	if err != nil {
		return op, false
	}
	if len(resp.Kvs) == 1 {
		op.found, op.value, op.rev = true, string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
	}
	tr.done.Add(1)
	return op, true
}

// waitProgress waits until n more operations have succeeded: the system
// serves again after a fault.
func (tr *traffic) waitProgress(t *testing.T, n int64, what string) {
	t.Helper()
	want := tr.done.Load() + n
	testutil.WaitFor(t, fmt.Sprintf("%d operations %s", n, what), 30*time.Second, func() bool {
		return tr.done.Load() >= want
	})
}

// end stops the clients and waits for their last operations.
func (tr *traffic) end() {
	tr.stop()
	tr.wg.Wait()
}

// history stops the traffic and returns every client's operations.
func (tr *traffic) history() []kvOp {
	tr.end()
	var out []kvOp
	for _, ops := range tr.ops {
		out = append(out, ops...)
	}
	return out
}
