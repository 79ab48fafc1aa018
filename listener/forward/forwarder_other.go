//go:build !linux

package forward

import (
	"errors"
	"net"
	"sync/atomic"
)

// Forwarder forwards connection pairs. This portable version copies with two
// goroutines per connection; the Linux one is event driven and holds no
// goroutine, buffer or pipe while a connection is idle.
type Forwarder struct {
	next atomic.Uint32 // spreads connections over the meters' shards
}

// NewForwarder returns a forwarder; it has the Linux one's signature so
// that callers need no build tags.
func NewForwarder() (*Forwarder, error) { return &Forwarder{}, nil }

// Close does nothing here: this forwarder has no shared state.
func (f *Forwarder) Close() error { return nil }

// Stopped reports true: this forwarder has no loop to wait for.
func (f *Forwarder) Stopped() bool { return true }

// StartMetered forwards bytes both ways between client and upstream,
// counting them into m as they move, and returns at once; see the Linux
// version for the contract.
func (f *Forwarder) StartMetered(client, upstream net.Conn, m Meters, done func(toUpstream, toClient int64)) (Forwarding, error) {
	return startCopy(client, upstream, m.of(int(f.next.Add(1))), done), nil
}

// LoopsConnect tells whether the loops connect upstreams and accept
// clients themselves (Connect, Serve): only the Linux forwarder's do.
const LoopsConnect = false

// Connect fails here, closing client: see LoopsConnect.
func (f *Forwarder) Connect(client Socket, _ Upstream, _ ConnectOptions, _ func(int64, int64)) (*Pair, error) {
	_ = client.Close()
	return nil, errors.New("forward: connecting in the loops needs Linux")
}

// Service is the Linux forwarder's handle of a listening socket its loops
// serve; none exists here.
type Service struct{}

// Serve fails here: see LoopsConnect. fd is left to the caller.
func (f *Forwarder) Serve(int, Acceptor, bool) (*Service, error) {
	return nil, errors.New("forward: accepting in the loops needs Linux")
}

// Pause does nothing: no Service exists here.
func (s *Service) Pause() {}

// Resume does nothing: no Service exists here.
func (s *Service) Resume() {}

// Stop does nothing: no Service exists here.
func (s *Service) Stop() {}
