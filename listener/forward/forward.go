// Package forward is the gateway's data plane: it moves the bytes of a
// proxied connection both ways between the client and the upstream, keeps
// TCP half-close, and counts what it moves.
//
// On Linux a Forwarder runs event loops on their own threads and holds no
// goroutine, buffer or pipe for an idle connection (see loop_linux.go); its
// loops can also accept the clients (Serve) and connect their upstreams
// (Connect) themselves, on raw descriptors. Connections that are no raw
// sockets (TLS) and other systems are copied by two goroutines per
// connection (copy.go).
package forward

import "net"

// KeepAliveProbes is how many unanswered keepalive probes end a
// connection: Linux's default, and Go's.
const KeepAliveProbes = 9

// Forwarding is one connection and its upstream being forwarded, by either
// engine: a loop's *Pair, or the two goroutines of a copy (TLS, other
// systems). It is all its owner needs of either, so that the owner's code
// is the same whatever carries the connection.
type Forwarding interface {
	// Close ends the forwarding at once: both connections are closed and
	// done is called. Any goroutine may call it, any number of times.
	Close() error
	// Control runs fn with the descriptor of side i's socket (0 the
	// client, 1 the upstream; under TLS, the socket it runs over), for
	// a socket option or TCP_INFO; it returns an error, without running
	// fn, when the side has no socket or once the pair has ended.
	Control(i int, fn func(fd uintptr)) error
	// Movable returns the pair a handover may export (Export,
	// ExportBatch); false for a copy, whose state lives in this
	// process's goroutines.
	Movable() (*Pair, bool)
}

// Forward copies bytes both ways between client and upstream with f until
// both directions have ended, then closes both connections. When one side
// finishes sending (EOF) the other side's write half is shut, so a client
// that closes its write side still receives the reply. When a copy fails
// (reset, or a connection closed under it) both connections are closed at
// once. It returns the bytes sent to upstream and to the client.
//
// It is Start that waits for done: a caller that must not park a goroutine
// per idle connection, as a listener, uses Start.
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
