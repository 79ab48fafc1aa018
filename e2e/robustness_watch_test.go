//go:build linux

package e2e

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/time/rate"
)

// maxWatchRestarts bounds how often a watch is made again after its
// channel closed (a watch that requires a leader is cancelled while its
// member has none).
const maxWatchRestarts = 1000

// A watch is made again at once after a few closes in a row, then at
// most every watchRestartEvery, as a client backs off: a member without
// a leader cancels a watch that requires one as soon as it is made, and
// until the gateway moves the connection (leaderless-max) an unpaced
// client would spend its restarts in a moment.
const (
	watchRestartEvery = 250 * time.Millisecond
	watchRestartBurst = 4
)

// watchLog records what one watch of keyPrefix delivered, in the order it
// came, from the revision start on.
type watchLog struct {
	start int64

	mu     sync.Mutex
	events []watchEvent
	last   int64 // the highest revision delivered
	// moved is closed, and replaced, at every response: waitRev waits on
	// it.
	moved    chan struct{}
	restarts int
	err      error // the last error a response carried
}

func newWatchLog(start int64) *watchLog {
	return &watchLog{start: start, moved: make(chan struct{})}
}

// run watches through cli until ctx is done or cli closed. A watch whose channel
// closes is made again from the revision after the last one delivered,
// as a client resumes one.
func (w *watchLog) run(ctx context.Context, cli *clientv3.Client) {
	next := w.start
	pace := rate.NewLimiter(rate.Every(watchRestartEvery), watchRestartBurst)
	for n := 0; n < maxWatchRestarts && pace.Wait(ctx) == nil; n++ {
		ch := cli.Watch(clientv3.WithRequireLeader(ctx), keyPrefix, clientv3.WithPrefix(), clientv3.WithRev(next))
		for resp := range ch {
			next = w.record(resp, next)
		}
		if ctx.Err() != nil || cli.Ctx().Err() != nil {
			return
		}
		w.mu.Lock()
		w.restarts++
		w.mu.Unlock()
	}
}

// record appends the events of resp and returns the revision to resume
// from.
func (w *watchLog) record(resp clientv3.WatchResponse, next int64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range resp.Events {
		e := watchEvent{rev: ev.Kv.ModRevision, key: string(ev.Kv.Key), value: string(ev.Kv.Value), delete: ev.Type == clientv3.EventTypeDelete}
		w.events = append(w.events, e)
		w.last = max(w.last, e.rev)
		next = max(next, e.rev+1)
	}
	if err := resp.Err(); err != nil {
		w.err = err
	}
	close(w.moved)
	w.moved = make(chan struct{})
	return next
}

// waitRev waits until the watch has delivered revision rev, or timeout
// passes; it says which.
func (w *watchLog) waitRev(rev int64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		last, moved := w.last, w.moved
		w.mu.Unlock()
		if last >= rev {
			return true
		}
		select {
		case <-moved:
		case <-deadline.C:
			return false
		}
	}
}

// snapshot returns the events delivered so far and the highest revision.
func (w *watchLog) snapshot() ([]watchEvent, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]watchEvent(nil), w.events...), w.last
}
