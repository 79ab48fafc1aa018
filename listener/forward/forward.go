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
