package listener

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// BenchmarkListenerConnect is a whole client connection through a
// Listener in front of an echo server: connect, 64-byte request and
// response, close; from 8 goroutines. Allocations count both ends of the
// benchmark's own connections too.
func BenchmarkListenerConnect(b *testing.B) {
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			go func() {
				testutil.EchoConn(c)
				c.Close()
			}()
		}
	}()
	l := startListener(b, back.Addr().String())
	defer func() { _ = l.Shutdown(context.Background()) }()
	addr := l.Addr().String()
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := make([]byte, 64), make([]byte, 64)
		for pb.Next() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			_, err = c.Write(req)
			if err == nil {
				_, err = io.ReadFull(c, resp)
			}
			c.Close()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
