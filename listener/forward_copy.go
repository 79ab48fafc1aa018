package listener

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// startCopy forwards bytes both ways between client and upstream with two
// goroutines and io.Copy, and calls done when both directions have ended.
// It serves connections that are no raw sockets (TLS), on every platform,
// and every connection where there is no event-driven forwarder.
func startCopy(client, upstream net.Conn, done func(toUpstream, toClient int64)) io.Closer {
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
	return c
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
