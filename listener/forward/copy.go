package forward

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// startCopy forwards bytes both ways between client and upstream with two
// goroutines and io.Copy, counting them into m as they are written, and
// calls done when both directions have ended. It serves connections that
// are no raw sockets (TLS), on every platform, and every connection where
// there is no event-driven forwarder.
func startCopy(client, upstream net.Conn, m loopMeters, done func(toUpstream, toClient int64)) Forwarding {
	c := &copyPair{client: client, upstream: upstream, m: m, epoch: time.Now()}
	c.act.begin(since(c.epoch))
	go c.run(done)
	return c
}

// run copies both ways until both have ended, then closes both
// connections and calls done with what each way carried, the GOAWAY's
// bytes included as the loop counts them.
func (c *copyPair) run(done func(toUpstream, toClient int64)) {
	var wg sync.WaitGroup
	var toClient int64
	wg.Go(func() {
		toClient = copyHalf(c.upstream, c.client, clientWriter{c})
		toClient += c.endToClient()
	})
	toUpstream := copyHalf(c.client, c.upstream, upstreamWriter{c})
	wg.Wait()
	_, _ = c.client.Close(), c.upstream.Close()
	done(toUpstream, toClient)
}

// copyPair is the handle of a copied forwarding: Close ends it.
type copyPair struct {
	client, upstream net.Conn
	m                loopMeters
	closed           atomic.Bool
	epoch            time.Time // when the copy started: act's clock
	act              activity

	// toClientMu makes writing to the client and following the frames
	// written (h2) one step, so that a GOAWAY asked from another
	// goroutine lands between two frames; goAwayN, the GOAWAY's bytes
	// written, which the member's copy doesn't count, goes with them.
	toClientMu sync.Mutex
	h2         h2Conn
	goAwayN    int64
	// speaksH2 tells GoAway that the client sent the preface; h2Decided
	// spares the client's copy the lock once its first bytes decided;
	// goAwayAsked makes a second GoAway ask nothing.
	speaksH2, h2Decided, goAwayAsked atomic.Bool
}

// Activity reports when the copy last moved bytes each way.
func (c *copyPair) Activity() Activity { return c.act.at(c.epoch) }

// Close closes both connections, which ends both copies; it may be called
// any number of times.
func (c *copyPair) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	_, _ = c.upstream.Close(), c.client.Close()
	return nil
}

// Control runs fn with the descriptor of side i's socket: the connection
// itself, or the one a TLS connection runs over.
func (c *copyPair) Control(i int, fn func(fd uintptr)) error {
	conn := c.client
	if i == 1 {
		conn = c.upstream
	}
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return errors.ErrUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return raw.Control(fn)
}

// GoAway asks for a GOAWAY to the client at the next frame boundary of the
// member's bytes, and reports whether the connection speaks plaintext
// HTTP/2, as what the copy sees of a terminated TLS does; any other gets
// nothing. A goroutine of its own asks: the writer holds the lock for as
// long as the client takes to read, and a move asks many connections in
// turn.
func (c *copyPair) GoAway() bool {
	if !c.speaksH2.Load() {
		return false
	}
	if !c.goAwayAsked.Swap(true) {
		go c.askGoAway()
	}
	return true
}

// askGoAway is GoAway under the writer's lock: at a frame boundary the
// GOAWAY goes now, else the writer sends it once the frame is written. A
// failed write is the writer's to see, at its next.
func (c *copyPair) askGoAway() {
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	if !c.h2.following() { // the member's copy ended: nothing more goes
		return
	}
	c.h2.asked = true
	_ = c.flushGoAway()
}

// CloseIfQuiet closes the copy when its Activity is Quiet for window, and
// reports whether it did. What io.Copy holds between its read and its
// write can't be seen from here: the loop's pairs check that too.
func (c *copyPair) CloseIfQuiet(window time.Duration) bool {
	if c.closed.Load() || !c.Activity().Quiet(time.Now(), window) || c.owesGoAway() {
		return false
	}
	return c.Close() == nil
}

// owesGoAway reports whether a GOAWAY was asked and not yet written while
// the member's bytes still go to the client: the client would take the
// close for a failure, not a goodbye. A writer holding the lock is busy,
// and owes as much.
func (c *copyPair) owesGoAway() bool {
	if !c.goAwayAsked.Load() {
		return false
	}
	if !c.toClientMu.TryLock() {
		return true
	}
	defer c.toClientMu.Unlock()
	return c.h2.following() && c.h2.out < len(h2GoAway)
}

// Movable reports false: a copy's state is in its goroutines.
func (c *copyPair) Movable() (*Pair, bool) { return nil, false }

// closeWriter is a connection whose write side can be shut alone, for
// half-close.
type closeWriter interface{ CloseWrite() error }

// upstreamWriter writes the client's bytes to the member, the first of
// them read for the HTTP/2 preface.
type upstreamWriter struct{ c *copyPair }

// Write writes b to the member and counts it.
func (w upstreamWriter) Write(b []byte) (int, error) {
	w.c.fromClient(b)
	n, err := w.c.upstream.Write(b)
	w.c.wrote(toUpstream, n)
	return n, err
}

// clientWriter writes the member's bytes to the client, following their
// frames, with the GOAWAY between two of them once asked.
type clientWriter struct{ c *copyPair }

// Write writes b to the client: see writeToClient.
func (w clientWriter) Write(b []byte) (int, error) { return w.c.writeToClient(b) }

// fromClient reads the client's first bytes for the HTTP/2 preface, under
// the writer's lock since the writer reads what they decided.
func (c *copyPair) fromClient(b []byte) {
	if c.h2Decided.Load() {
		return
	}
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	if c.h2.prefaceSeen(b) {
		c.speaksH2.Store(true)
	}
	c.h2Decided.Store(c.h2.state != h2Unknown)
}

// writeToClient writes b to the client under the writer's lock, so that
// no GOAWAY can be asked between a write and following its frames.
func (c *copyPair) writeToClient(b []byte) (int, error) {
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	written := 0
	for written < len(b) {
		n, err := c.writeFrames(b[written:])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// writeFrames writes what of b may go now: all of it, or while a GOAWAY
// is held only what ends the current frame, after which the GOAWAY goes
// before the rest. The caller holds the writer's lock.
func (c *copyPair) writeFrames(b []byte) (int, error) {
	if err := c.flushGoAway(); err != nil {
		return 0, err
	}
	if c.h2.goAwayHeld() {
		b = b[:min(len(b), c.h2.untilBoundary())]
	}
	n, err := c.client.Write(b)
	if c.h2.following() {
		c.h2.toClient(b[:n])
	}
	c.wrote(toClient, n)
	if err != nil {
		return n, err
	}
	return n, c.flushGoAway()
}

// flushGoAway writes the GOAWAY when it is due (asked, at a frame
// boundary), counted as the member's bytes are. The caller holds the
// writer's lock.
func (c *copyPair) flushGoAway() error {
	if !c.h2.goAwayDue() {
		return nil
	}
	n, err := io.WriteString(c.client, h2GoAway[c.h2.out:])
	c.h2.out += n
	c.goAwayN += int64(n)
	c.wrote(toClient, n)
	return err
}

// endToClient stops following the member's frames once its copy ended,
// so that no GOAWAY asked later is written to a client shut for writes,
// and returns the GOAWAY's bytes written.
func (c *copyPair) endToClient() int64 {
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	c.h2.state = h2No
	return c.goAwayN
}

// wrote counts n bytes written in direction dir, as they are written, so
// that the byte counters move while a connection is open.
func (c *copyPair) wrote(dir, n int) {
	if n <= 0 {
		return
	}
	if dir == toClient {
		c.m.add(0, int64(n))
	} else {
		c.m.add(int64(n), 0)
	}
	c.act.wrote(dir, since(c.epoch))
}

// copyHalf copies src to dst through w, which writes to dst. At EOF it
// shuts dst's write side; on an error it closes both, which also ends the
// copy in the other direction.
func copyHalf(src, dst net.Conn, w io.Writer) int64 {
	n, err := io.Copy(w, src)
	if err == nil || errors.Is(err, io.EOF) {
		if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
			return n
		}
	}
	_, _ = src.Close(), dst.Close()
	return n
}
