//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
)

// The backend speaks a one-byte preamble, sent by the client with its first
// request: modeEcho echoes every byte back until EOF; modeSource is followed
// by an 8-byte big-endian length and sends that many bytes, then closes.
const (
	modeEcho   = 'E'
	modeSource = 'S'
)

// backend is the echo/source server every target forwards to. It runs in
// the bench process.
type backend struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{ln: ln, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	return b, nil
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func (b *backend) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // EMFILE and such: the client side will see it
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.handle(c)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			_ = c.Close()
		}()
	}
}

func (b *backend) handle(c net.Conn) {
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case modeEcho:
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				// Half-close: the client is done; so are we.
				return
			}
		}
	case modeSource:
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		remain := int64(binary.BigEndian.Uint64(hdr[:]))
		buf := make([]byte, 256<<10)
		for remain > 0 {
			n := int64(len(buf))
			if n > remain {
				n = remain
			}
			w, err := c.Write(buf[:n])
			remain -= int64(w)
			if err != nil {
				return
			}
		}
	}
}

// open is how many connections the backend has open.
func (b *backend) open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// close stops accepting and closes every open connection.
func (b *backend) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
