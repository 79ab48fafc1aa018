package forward

import (
	"net/netip"
	"time"
)

// Acceptor decides on the connections the event loops accept on a
// listening socket (Forwarder.Serve). The loops call it on their threads,
// concurrently: it must not block.
type Acceptor interface {
	// Room reports whether a connection may be accepted now; false
	// pauses accepting on the calling loop for a while (the descriptor
	// reserve), the kernel queueing new connections meanwhile.
	Room() bool
	// Accept decides on client socket fd just accepted, from peer (the
	// zero value for a unix socket). fd is the loop's: Accept may read
	// its options, not keep it. It returns how to connect the client's
	// upstream; keep false has the loop close fd; keep true with a nil
	// Upstream means the Acceptor took fd (to serve it another way).
	Accept(fd int, peer netip.AddrPort) (c Client, keep bool)
	// Error tells that an accept failed (out of descriptors, say), and
	// returns how long accepting pauses on the calling loop.
	Error(err error) (pause time.Duration)
}

// Client is what an Acceptor makes of a connection accepted in a loop.
type Client struct {
	// Upstream and Options connect its upstream, as Forwarder.Connect.
	Upstream Upstream
	Options  ConnectOptions
	// Done is called once the pair has ended, as for StartMetered; also when it
	// could not even be registered (with no bytes).
	Done func(toUpstream, toClient int64)
	// Started is given the pair as soon as it is registered, before its
	// upstream is connected: the handle that ends it.
	Started func(*Pair)
}
