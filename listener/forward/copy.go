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
	c := &copyPair{client: client, upstream: upstream, epoch: time.Now()}
	c.act.begin(since(c.epoch))
	go func() {
		var wg sync.WaitGroup
		var toClient int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			toClient = copyHalf(upstream, client, &meteredWriter{dst: client, m: m, c: c, toClient: true})
		}()
		toUpstream := copyHalf(client, upstream, &meteredWriter{dst: upstream, m: m, c: c})
		wg.Wait()
		_, _ = client.Close(), upstream.Close()
		done(toUpstream, toClient)
	}()
	return c
}

// copyPair is the handle of a copied forwarding: Close ends it.
type copyPair struct {
	client, upstream net.Conn
	closed           atomic.Bool
	epoch            time.Time // when the copy started: act's clock
	act              activity
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

// GoAway reports false: the copy doesn't follow HTTP/2 frames, so a move
// closes it when quiet instead.
func (c *copyPair) GoAway() bool { return false }

// CloseIfQuiet closes the copy when its Activity is Quiet for window, and
// reports whether it did. What io.Copy holds between its read and its
// write can't be seen from here: the loop's pairs check that too.
func (c *copyPair) CloseIfQuiet(window time.Duration) bool {
	if c.closed.Load() || !c.Activity().Quiet(time.Now(), window) {
		return false
	}
	return c.Close() == nil
}

// Movable reports false: a copy's state is in its goroutines.
func (c *copyPair) Movable() (*Pair, bool) { return nil, false }

// closeWriter is a connection whose write side can be shut alone, for
// half-close.
type closeWriter interface{ CloseWrite() error }

// meteredWriter writes to its connection and counts what was written, so
// that the byte counters move while a connection is open.
type meteredWriter struct {
	dst      io.Writer
	m        loopMeters
	c        *copyPair // whose activity the writes are
	toClient bool      // the direction counted: to the client, else to upstream
}

// Write writes b and counts what was written.
func (w *meteredWriter) Write(b []byte) (int, error) {
	n, err := w.dst.Write(b)
	dir := toUpstream
	if w.toClient {
		dir = toClient
		w.m.add(0, int64(n))
	} else {
		w.m.add(int64(n), 0)
	}
	if n > 0 {
		w.c.act.wrote(dir, since(w.c.epoch))
	}
	return n, err
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
