package forward

import (
	"net"
	"runtime"
)

// Test hooks: what the tests in package forward_test may see, on every
// system.

// Forward copies bytes both ways between client and upstream with f until
// both directions have ended, then closes both connections. When one side
// finishes sending (EOF) the other side's write half is shut, so a client
// that closes its write side still receives the reply. When a copy fails
// (reset, or a connection closed under it) both connections are closed at
// once. It returns the bytes sent to upstream and to the client.
//
// It is Start waiting for done, which a caller that must not park a
// goroutine per idle connection, as a listener, does not do.
func (f *Forwarder) Forward(client, upstream net.Conn) (toUpstream, toClient int64) {
	type counts struct{ up, down int64 }
	ch := make(chan counts, 1)
	_, err := f.Start(client, upstream, func(up, down int64) { ch <- counts{up, down} })
	if err != nil {
		return 0, 0
	}
	c := <-ch
	return c.up, c.down
}

// Start is StartMetered with no meter.
func (f *Forwarder) Start(client, upstream net.Conn, done func(toUpstream, toClient int64)) (Forwarding, error) {
	return f.StartMetered(client, upstream, Meters{}, done)
}

// Sync returns once a GoAway asked of c was taken in by its writer, as
// Pair.Sync does for a loop's pair: the GOAWAY is written by then, or
// held until the member's frame ends.
func (c *copyPair) Sync() {
	for c.goAwayAsked.Load() && !c.goAwayTakenIn() {
		runtime.Gosched()
	}
}

// goAwayTakenIn reports whether the writer has the GoAway asked, or no
// longer writes.
func (c *copyPair) goAwayTakenIn() bool {
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	return c.h2.asked || !c.h2.following()
}
