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

import "time"

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
	// Activity reports when bytes last moved each way, for closing a
	// connection only when nothing is in flight and for seeing an
	// upstream that owes an answer. Any goroutine may call it.
	Activity() Activity
	// GoAway asks for a GOAWAY frame to the client at the next frame
	// boundary, and reports whether the connection speaks HTTP/2 in the
	// bytes forwarded (in the clear, or TLS the gateway terminates); one
	// that does moves without failing a request, and others get nothing
	// (h2.go). It never waits for the client.
	GoAway() bool
	// CloseIfQuiet is Close only when nothing is in flight, checked
	// where the bytes are; it reports whether it closed. A move that
	// can't send a GOAWAY closes the connection so.
	CloseIfQuiet(window time.Duration) bool
	// Movable returns the pair a handover may export (Export,
	// ExportBatch); false for a copy, whose state lives in this
	// process's goroutines.
	Movable() (*Pair, bool)
}
