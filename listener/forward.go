package listener

import (
	"errors"
	"io"
	"net"
	"sync"
)

// closeWriter is a connection whose write side can be shut alone.
type closeWriter interface {
	CloseWrite() error
}

// Forward copies bytes both ways between client and upstream until both
// directions have ended, then closes both connections. When one side
// finishes sending (EOF) the other side's write half is shut, so a client
// that closes its write side still receives the reply. When a copy fails
// (reset, or a connection closed under it) both connections are closed at
// once. It returns the bytes sent to upstream and to the client.
func Forward(client, upstream net.Conn) (toUpstream, toClient int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		toClient = pipe(upstream, client)
	}()
	toUpstream = pipe(client, upstream)
	wg.Wait()
	_ = client.Close()
	_ = upstream.Close()
	return toUpstream, toClient
}

// pipe copies src to dst. At EOF it shuts dst's write side; on an error it
// closes both, which also ends the copy in the other direction.
func pipe(src, dst net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err == nil || errors.Is(err, io.EOF) {
		if cw, ok := dst.(closeWriter); ok {
			if cw.CloseWrite() == nil {
				return n
			}
		}
	}
	_ = src.Close()
	_ = dst.Close()
	return n
}
