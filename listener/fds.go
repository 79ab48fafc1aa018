package listener

import (
	"context"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// How the accept loops keep descriptors free.
//
// At the open-file limit, accept fails with EMFILE, and so does everything
// else that needs a descriptor: the admin server can't take a scrape or a
// health probe, the config watcher can't read the file. So the listeners
// of a gateway share an FDBudget and stop accepting proxied connections
// while fewer than reserve descriptors would be left: clients wait in the
// listen backlog, and the rest of the gateway keeps working.
//
// The budget counts the descriptors it hands out, two per proxied
// connection (client and upstream) from accept to release, with an atomic
// add on accept and on close, not on the forwarding path. Everything else
// (listening sockets, event loops, pipes, health checks, the admin server)
// is counted from /proc/self/fd, only near the limit (at most every
// recountNear) and, while less than half the limit is free, at most every
// recountFar; far from the limit an accept costs a clock read and a few
// atomic loads.
const (
	recountNear = 50 * time.Millisecond
	recountFar  = time.Second
	// pausePoll is how often a paused accept loop looks again.
	pausePoll = 20 * time.Millisecond
	// Bounds of the reserve: a twentieth of the limit, within these.
	minFDReserve = 16
	maxFDReserve = 256
)

// FDBudget keeps a reserve of free descriptors for the gateway's own work
// by pausing the accept loops that share it. A nil *FDBudget never pauses.
// The listeners of a gateway share one.
type FDBudget struct {
	limit   atomic.Int64 // RLIMIT_NOFILE; 0 when unknown: never pause
	reserve atomic.Int64
	held    atomic.Int64 // descriptors of proxied connections
	other   atomic.Int64 // other open descriptors, as last counted
	counted atomic.Int64 // when other was counted, unix ns; 0: count now

	// count counts the process's open descriptors: openDescriptors, or a
	// stand-in in tests.
	count func() (int64, error)

	pauses  atomic.Uint64 // times an accept loop paused
	paused  atomic.Int64  // accept loops paused now
	lastLog atomic.Int64  // when a pause was last logged, unix ns
}

// NewFDBudget returns a budget for this process's open-file limit, for the
// listeners of one gateway to share (Options.Budget).
func NewFDBudget() *FDBudget {
	b := &FDBudget{count: openDescriptors}
	b.setLimit(openFileLimit())
	return b
}

// setLimit sets the open-file limit and the reserve that goes with it.
func (b *FDBudget) setLimit(limit int64) {
	b.limit.Store(limit)
	b.reserve.Store(min(max(limit/20, minFDReserve), maxFDReserve))
}

// take counts the descriptors of a proxied connection just accepted.
func (b *FDBudget) take() {
	if b != nil {
		b.held.Add(2)
	}
}

// give forgets the descriptors of a proxied connection that ended.
func (b *FDBudget) give() {
	if b != nil {
		b.held.Add(-2)
	}
}

// free is the number of descriptors free, as far as the budget knows.
func (b *FDBudget) free() int64 {
	return b.limit.Load() - b.held.Load() - b.other.Load()
}

// room reports whether a proxied connection may be accepted now: more
// than the reserve would stay free.
func (b *FDBudget) room() bool {
	if b == nil || b.limit.Load() <= 0 {
		return true
	}
	free, reserve := b.free(), b.reserve.Load()
	counted := b.counted.Load()
	since := time.Duration(time.Now().UnixNano() - counted)
	if counted == 0 || (free <= 2*reserve && since >= recountNear) || (free < b.limit.Load()/2 && since >= recountFar) {
		b.recount()
		free = b.free()
	}
	return free > reserve
}

// recount counts the open descriptors that are not proxied connections'.
// It keeps the last count when the system can't tell.
func (b *FDBudget) recount() {
	b.counted.Store(time.Now().UnixNano())
	n, err := b.count()
	if err != nil {
		return
	}
	b.other.Store(max(n-b.held.Load(), 0))
}

// stale makes the next room recount: an accept failed for want of
// descriptors, so the last count is wrong.
func (b *FDBudget) stale() {
	if b != nil {
		b.counted.Store(0)
	}
}

// waitRoom returns once a proxied connection may be accepted, true, or
// when ctx ends or closed is set, false. A pause is counted and logged, at
// most once a second.
func (b *FDBudget) waitRoom(ctx context.Context, closed *atomic.Bool, log logrus.FieldLogger) bool {
	if b.room() {
		return true
	}
	b.pause(log)
	defer b.paused.Add(-1)
	tick := time.NewTicker(pausePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		if closed.Load() {
			return false
		}
		if b.room() {
			log.WithField("free-descriptors", b.free()).Debug("accepting resumed")
			return true
		}
	}
}

// pause counts and logs an accept loop that pauses; paused.Add(-1) ends
// it.
func (b *FDBudget) pause(log logrus.FieldLogger) {
	b.pauses.Add(1)
	b.paused.Add(1)
	b.logPause(log)
}

// roomOrPause is room for an accepter that doesn't wait in waitRoom (an
// event loop): the first false counts and logs a pause, in *paused, and
// the next true ends it.
func (b *FDBudget) roomOrPause(paused *atomic.Bool, log logrus.FieldLogger) bool {
	if b.room() {
		if paused.CompareAndSwap(true, false) {
			b.paused.Add(-1)
			log.WithField("free-descriptors", b.free()).Debug("accepting resumed")
		}
		return true
	}
	if paused.CompareAndSwap(false, true) {
		b.pause(log)
	}
	return false
}

// logPause logs a pause, at most about once a second.
func (b *FDBudget) logPause(log logrus.FieldLogger) {
	now := time.Now().UnixNano()
	last := b.lastLog.Load()
	if now-last < int64(time.Second) || !b.lastLog.CompareAndSwap(last, now) {
		return
	}
	log.WithFields(logrus.Fields{
		"open-file-limit": b.limit.Load(), "reserve": b.reserve.Load(), "free-descriptors": b.free(),
		"proxied-descriptors": b.held.Load(), "pauses-total": b.pauses.Load(),
	}).Warn("accepting paused: few file descriptors left; the reserve is kept for the admin server, the config watcher and health checks")
}

// openDescriptors counts this process's open descriptors.
func openDescriptors() (int64, error) {
	var err error
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		var f *os.File
		if f, err = os.Open(dir); err != nil {
			continue
		}
		names, rerr := f.Readdirnames(-1)
		_ = f.Close()
		if rerr != nil {
			err = rerr
			continue
		}
		return int64(len(names)) - 1, nil // the directory's own descriptor
	}
	return 0, err
}

// AcceptPauses returns how many times the accept loops sharing b paused so
// far because few file descriptors were left, and how many are paused now.
func (b *FDBudget) AcceptPauses() (total uint64, now int64) {
	return b.pauses.Load(), b.paused.Load()
}
