package testutil

import (
	"net"
	"sync"
	"testing"
)

// HoldingRelay is a Relay on a loopback port whose way back, from the
// target to the client, a test can hold: what the target writes then
// stays in the relay, as an answer slow on its way would, and the client
// waits for it with its request answered by nothing. The way there is
// never held, so the target gets the client's requests and answers them.
type HoldingRelay struct {
	*Server
	mu      sync.Mutex
	changed *sync.Cond // broadcast when a hold changes
	allow   int        // what a new connection may pass back; -1 for all
	ways    map[*wayBack]struct{}
	passed  int64 // bytes written back, on every connection
}

// wayBack is one connection's way back: what it may still pass (-1 for
// all), and what it read from the target and has not written yet.
type wayBack struct{ allow, held int }

// HoldRelay starts a HoldingRelay to target that holds nothing yet.
func HoldRelay(t testing.TB, target string) *HoldingRelay {
	t.Helper()
	r := &HoldingRelay{allow: -1, ways: map[*wayBack]struct{}{}}
	r.changed = sync.NewCond(&r.mu)
	r.Server = relay(t, "127.0.0.1:0", target, r.copyBack)
	t.Cleanup(r.Release) // before the server's Close, which waits for every copy
	return r
}

// Hold lets each connection pass n more bytes back, then holds the rest:
// n > 0 cuts the target's next write short, in the middle of whatever it
// writes (an HTTP/2 frame, say).
func (r *HoldingRelay) Hold(n int) { r.set(max(n, 0)) }

// Release lets all that is held through, and all that follows.
func (r *HoldingRelay) Release() { r.set(-1) }

// set gives every connection, and those to come, allow.
func (r *HoldingRelay) set(allow int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.allow = allow
	for w := range r.ways {
		w.allow = allow
	}
	r.changed.Broadcast()
}

// Passed is how many bytes the relay wrote back, on every connection.
func (r *HoldingRelay) Passed() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passed
}

// Holding is how many connections hold bytes back.
func (r *HoldingRelay) Holding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for w := range r.ways {
		if w.held > 0 {
			n++
		}
	}
	return n
}

// copyBack copies up, the target, to c, the client, as the hold allows,
// until either fails.
func (r *HoldingRelay) copyBack(c, up net.Conn) {
	w := r.open()
	defer r.close(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if r.writeBack(w, c, buf[:n]) != nil || err != nil {
			return
		}
	}
}

// writeBack writes b to c, each part once the hold lets it through.
func (r *HoldingRelay) writeBack(w *wayBack, c net.Conn, b []byte) error {
	r.moved(w, len(b), 0)
	for len(b) > 0 {
		n, err := c.Write(b[:r.wait(w, len(b))])
		r.moved(w, -n, n)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// wait waits until w may pass bytes back and returns how many of want,
// taking them from what it may still pass.
func (r *HoldingRelay) wait(w *wayBack, want int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w.allow == 0 {
		r.changed.Wait()
	}
	if w.allow < 0 {
		return want
	}
	n := min(w.allow, want)
	w.allow -= n
	return n
}

// moved adds held to what w holds and passed to what was written back.
func (r *HoldingRelay) moved(w *wayBack, held, passed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.held += held
	r.passed += int64(passed)
}

// open registers a connection's way back, under the hold of the moment.
func (r *HoldingRelay) open() *wayBack {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &wayBack{allow: r.allow}
	r.ways[w] = struct{}{}
	return w
}

// close forgets a connection's way back.
func (r *HoldingRelay) close(w *wayBack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.ways, w)
}
