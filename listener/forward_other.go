//go:build !linux

package listener

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Forwarder forwards connection pairs. This portable version copies with two
// goroutines per connection; the Linux one is event driven and holds no
// goroutine, buffer or pipe while a connection is idle.
type Forwarder struct{}

// NewForwarder returns a forwarder.
func NewForwarder() (*Forwarder, error) { return &Forwarder{}, nil }

// Close does nothing here: this forwarder has no shared state.
func (f *Forwarder) Close() error { return nil }

// Start forwards bytes both ways between client and upstream and returns at
// once; see the Linux version for the contract.
func (f *Forwarder) Start(client, upstream net.Conn, done func(toUpstream, toClient int64)) (io.Closer, error) {
	c := &copyPair{client: client, upstream: upstream}
	go func() {
		var wg sync.WaitGroup
		var toClient int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			toClient = copyHalf(upstream, client)
		}()
		toUpstream := copyHalf(client, upstream)
		wg.Wait()
		_, _ = client.Close(), upstream.Close()
		done(toUpstream, toClient)
	}()
	return c, nil
}

type copyPair struct {
	client, upstream net.Conn
	closed           atomic.Bool
}

func (c *copyPair) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	_, _ = c.upstream.Close(), c.client.Close()
	return nil
}

type closeWriter interface{ CloseWrite() error }

// copyHalf copies src to dst. At EOF it shuts dst's write side; on an error
// it closes both, which also ends the copy in the other direction.
func copyHalf(src, dst net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err == nil || errors.Is(err, io.EOF) {
		if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
			return n
		}
	}
	_, _ = src.Close(), dst.Close()
	return n
}

// loopsExited returns nothing: this forwarder has no loops.
func (f *Forwarder) loopsExited() []<-chan struct{} { return nil }
