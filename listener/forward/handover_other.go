//go:build !linux

package forward

import (
	"errors"
	"io"
	"net"
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

// Export fails: only the Linux forwarder hands connections over.
func (p *Pair) Export(time.Duration) (Exported, error) { return Exported{}, ErrNotExported }

// ExportBatch fails for every pair: only the Linux forwarder hands
// connections over.
func ExportBatch(ps []*Pair, _ time.Duration) []ExportResult {
	out := make([]ExportResult, len(ps))
	for i := range out {
		out[i].Err = ErrNotExported
	}
	return out
}

// AdoptPair fails here: only the Linux forwarder adopts connections. Both
// sockets are closed.
func (f *Forwarder) AdoptPair(client, upstream Socket, _ PairState, _ Meters, _ func(int64, int64)) (*Pair, error) {
	_, _ = client.Close(), upstream.Close()
	return nil, errors.New("forward: adopting a connection needs Linux")
}

// Control fails: no Pair exists here.
func (p *Pair) Control(int, func(fd uintptr)) error { return net.ErrClosed }
