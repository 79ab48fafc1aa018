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

// KeepAliveProbes is how many unanswered keepalive probes end a
// connection: Linux's default, and Go's.
const KeepAliveProbes = 9
