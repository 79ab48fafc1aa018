//go:build !linux

package forward

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Socket is a connection the Linux forwarder's event loops can forward;
// here it only lets callers build without build tags.
type Socket interface {
	syscall.Conn
	io.Closer
}

// Pair is the Linux forwarder's handle of a pair; this forwarder makes
// none, so that no connection is ever exported here.
type Pair struct{}

// Close does nothing: no Pair exists here.
func (p *Pair) Close() error { return nil }

// Activity reports nothing: no Pair exists here.
func (p *Pair) Activity() Activity { return Activity{} }

// GoAway reports false: no Pair exists here.
func (p *Pair) GoAway() bool { return false }

// CloseIfQuiet reports false: no Pair exists here.
func (p *Pair) CloseIfQuiet(time.Duration) bool { return false }

// Movable reports false: no Pair exists here.
func (p *Pair) Movable() (*Pair, bool) { return nil, false }

// ExportBatch fails for every pair: only the Linux forwarder hands
// connections over.
func ExportBatch(ps []*Pair, _ time.Duration) []ExportResult {
	out := make([]ExportResult, len(ps))
	for i := range out {
		out[i].Err = ErrNotExported
	}
	return out
}

// AdoptFDs fails here: only the Linux forwarder adopts connections. Both
// descriptors are closed.
func (f *Forwarder) AdoptFDs(client, upstream int, _ PairState, _ Meters, _ func(int64, int64)) (*Pair, error) {
	_, _ = syscall.Close(client), syscall.Close(upstream)
	return nil, errors.New("forward: adopting a connection needs Linux")
}

// Peer fails here: only the Linux forwarder adopts connections.
func Peer(int) (netip.AddrPort, bool, error) {
	return netip.AddrPort{}, false, errors.New("forward: adopting a connection needs Linux")
}

// Control fails: no Pair exists here.
func (p *Pair) Control(int, func(fd uintptr)) error { return net.ErrClosed }
