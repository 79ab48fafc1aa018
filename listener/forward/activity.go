package forward

import (
	"sync/atomic"
	"time"
)

// Activity is what a forwarding's last bytes say about it: whether a
// request may be in flight, and whether the upstream owes an answer. Its
// owner closes a connection without failing a request only when it is
// Quiet, and takes a long Unanswered wait as a sign of a frozen upstream.
type Activity struct {
	// ToUpstream and ToClient are when bytes were last written each way;
	// the start of the forwarding until any are.
	ToUpstream, ToClient time.Time
	// Unanswered is when bytes went to the upstream that no bytes from it
	// have followed yet; zero when the upstream spoke last.
	Unanswered time.Time
}

// Quiet reports whether nothing is in flight at now: the upstream spoke
// last, and neither way moved bytes for window. A request sent, or an
// answer still being written, is never quiet.
func (a Activity) Quiet(now time.Time, window time.Duration) bool {
	if !a.Unanswered.IsZero() {
		return false
	}
	return now.Sub(a.ToUpstream) >= window && now.Sub(a.ToClient) >= window
}

// Directions of a forwarding, as Pair.dirs and activity index them.
const (
	toUpstream = 0
	toClient   = 1
)

// activity records a forwarding's last writes, as nanoseconds since its
// engine's epoch (never 0, which means none). The engine writes it, any
// goroutine reads it.
type activity struct {
	last       [2]atomic.Int64 // per direction: toUpstream, toClient
	unanswered atomic.Int64
}

// begin marks the start of the forwarding at now: quiet from there on.
func (a *activity) begin(now int64) {
	a.last[toUpstream].Store(now)
	a.last[toClient].Store(now)
}

// wrote records bytes written in direction dir at now.
func (a *activity) wrote(dir int, now int64) {
	a.last[dir].Store(now)
	if dir == toUpstream {
		a.unanswered.CompareAndSwap(0, now)
		return
	}
	if a.unanswered.Load() != 0 {
		a.unanswered.Store(0)
	}
}

// at reports the activity as times, its nanoseconds counted from epoch.
func (a *activity) at(epoch time.Time) Activity {
	when := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return epoch.Add(time.Duration(ns))
	}
	return Activity{
		ToUpstream: when(a.last[toUpstream].Load()),
		ToClient:   when(a.last[toClient].Load()),
		Unanswered: when(a.unanswered.Load()),
	}
}

// since is the clock of an engine that started at epoch: nanoseconds, never 0.
func since(epoch time.Time) int64 { return int64(time.Since(epoch)) + 1 }
