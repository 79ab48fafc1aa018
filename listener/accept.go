package listener

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Accept backoff after a failed accept, doubling from min to max.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// acceptFailures is the state of a listener's one policy for failed
// accepts, whoever accepts (Go's Accept or the forwarder's loops): see
// acceptFailed.
type acceptFailures struct {
	backoff    atomic.Int64 // the last pause, ns; 0 once an accept succeeds
	lastLog    atomic.Int64 // unix ns
	suppressed atomic.Int64
}

// acceptFailed answers a failed accept: the descriptors are counted again
// (the last count is wrong), the error is logged at most once a second
// (at the open-file limit it repeats quickly), and it returns how long
// accepting pauses.
func (l *Listener) acceptFailed(err error) time.Duration {
	l.fds.stale()
	f := &l.acceptFails
	pause := min(max(2*time.Duration(f.backoff.Load()), minAcceptBackoff), maxAcceptBackoff)
	f.backoff.Store(int64(pause))
	now := time.Now().UnixNano()
	last := f.lastLog.Load()
	if now-last < int64(time.Second) || !f.lastLog.CompareAndSwap(last, now) {
		f.suppressed.Add(1)
		return pause
	}
	l.log.WithError(err).WithFields(logrus.Fields{"retry-in": pause.String(), "suppressed": f.suppressed.Swap(0)}).Error("accept failed")
	return pause
}

// acceptSucceeded restarts the backoff: a load, and a store only after a
// failure.
func (l *Listener) acceptSucceeded() {
	if l.acceptFails.backoff.Load() != 0 {
		l.acceptFails.backoff.Store(0)
	}
}

// acceptLoop accepts with Go's Accept until the listener is closed, for a
// listener the loops don't serve. Transient accept errors (such as running
// out of file descriptors) pause it as acceptFailed says; they never end
// it.
func (l *Listener) acceptLoop(w *workers) {
	for l.fds.waitRoom(l.ctx, &l.closed, l.log) {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) || !l.sleep(l.acceptFailed(err)) {
				return
			}
			continue
		}
		l.acceptSucceeded()
		if !l.admit(c) {
			continue
		}
		_, unixClient := c.(*net.UnixConn)
		pc := &proxyConn{client: c, unix: unixClient, start: time.Now()}
		l.track(pc)
		l.serveAccepted(pc, w)
	}
}

// sleep waits for d, or reports false when the listener shuts down first.
func (l *Listener) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}
