package forward_test

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// The forwarder against a reference, two goroutines with io.Copy (which
// splices on Linux), in the same run:
//
//	go test -run XXX -bench Forward -benchmem ./listener/forward/

// forwardFunc starts forwarding between the gateway's two ends.
type forwardFunc func(tb testing.TB, gwClient, gwUpstream net.Conn)

func implementations(b *testing.B) map[string]forwardFunc {
	f := newForwarder(b)
	// Metered as the listener meters: a listener's and an endpoint's.
	m := forward.Meters{Listener: &byteMeter{}, Endpoint: &byteMeter{}}
	return map[string]forwardFunc{
		"impl=forwarder": func(tb testing.TB, c, u net.Conn) {
			if _, err := f.StartMetered(c, u, m, func(int64, int64) {}); err != nil {
				tb.Fatal(err)
			}
		},
		"impl=io.Copy": func(_ testing.TB, c, u net.Conn) { go ioCopyForward(c, u) },
	}
}

// ioCopyForward is the reference forwarder: a goroutine per direction,
// io.Copy, CloseWrite at EOF.
func ioCopyForward(client, upstream net.Conn) {
	half := func(src, dst net.Conn) {
		_, err := io.Copy(dst, src)
		if err == nil || errors.Is(err, io.EOF) {
			if dst.(*net.TCPConn).CloseWrite() == nil {
				return
			}
		}
		_, _ = src.Close(), dst.Close()
	}
	go half(upstream, client)
	half(client, upstream)
}

// benchPair returns the client's and the server's ends of a connection
// forwarded by fwd.
func benchPair(b *testing.B, fwd forwardFunc) (client, server net.Conn) {
	client, gwClient := tcpPair(b)
	gwUpstream, server := tcpPair(b)
	fwd(b, gwClient, gwUpstream)
	return client, server
}

// BenchmarkForward measures the forwarder over loopback: one-way bulk
// (64 KiB per op), and 128-byte request/response on one connection and on
// 64 at once.
func BenchmarkForward(b *testing.B) {
	for name, fwd := range implementations(b) {
		b.Run("bulk/"+name, func(b *testing.B) { benchBulk(b, fwd, nil) })
		b.Run("bulk-h2/"+name, func(b *testing.B) { benchBulk(b, fwd, []byte(http2.ClientPreface)) })
		b.Run("rr128/"+name, func(b *testing.B) { benchRoundTrips(b, fwd) })
		b.Run("rr128-64conns/"+name, func(b *testing.B) { benchRoundTripsParallel(b, fwd, 64) })
	}
}

// benchBulk reads 64 KiB per op that the server sends as fast as it can,
// once the client sent first: for bulk-h2, the HTTP/2 preface, whose
// connections the forwarder copies instead of splicing, to follow their
// frames. The server's bytes are no frames: the cost is the same.
func benchBulk(b *testing.B, fwd forwardFunc, first []byte) {
	client, server := benchPair(b, fwd)
	if first != nil {
		roundTripTo(b, client, server, first)
	}
	chunk := make([]byte, 256<<10)
	go func() {
		for {
			if _, err := server.Write(chunk); err != nil {
				return
			}
		}
	}()
	const perOp = 64 << 10
	buf := make([]byte, 256<<10)
	b.SetBytes(perOp)
	b.ReportAllocs()
	b.ResetTimer()
	for remain := int64(b.N) * perOp; remain > 0; {
		n, err := client.Read(buf[:min(int64(len(buf)), remain)])
		if err != nil {
			b.Fatal(err)
		}
		remain -= int64(n)
	}
	b.StopTimer()
	client.Close()
	server.Close()
}

// roundTripTo sends first from client and reads it on server.
func roundTripTo(b *testing.B, client, server net.Conn, first []byte) {
	if _, err := client.Write(first); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(server, make([]byte, len(first))); err != nil {
		b.Fatal(err)
	}
}

// benchRoundTrips makes one 128-byte round trip per op through an echo
// server.
func benchRoundTrips(b *testing.B, fwd forwardFunc) {
	client, server := benchPair(b, fwd)
	go testutil.EchoConn(server)
	req, resp := make([]byte, 128), make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	defer startProcessCost(b).report()
	for range b.N {
		if _, err := client.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRoundTripsParallel is benchRoundTrips on conns connections at once.
func benchRoundTripsParallel(b *testing.B, fwd forwardFunc, conns int) {
	clients := make([]net.Conn, conns)
	for i := range clients {
		client, server := benchPair(b, fwd)
		go testutil.EchoConn(server)
		clients[i] = client
	}
	var next atomic.Int32
	var once sync.Once
	b.SetParallelism(max(1, conns/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	defer startProcessCost(b).report()
	b.RunParallel(func(pb *testing.PB) {
		c := clients[int(next.Add(1)-1)%conns]
		req, resp := make([]byte, 128), make([]byte, 128)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				once.Do(func() { b.Error(err) })
				return
			}
			if _, err := io.ReadFull(c, resp); err != nil {
				once.Do(func() { b.Error(err) })
				return
			}
		}
	})
}

// processCost reports what the whole process (forwarder, clients and
// servers alike) spent per op: CPU time and context switches, the costs a
// forwarder's wake-ups add beside its own work.
type processCost struct {
	b     *testing.B
	start syscall.Rusage
}

func startProcessCost(b *testing.B) processCost {
	c := processCost{b: b}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &c.start)
	return c
}

func (c processCost) report() {
	var end syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &end)
	cpu := time.Duration(syscall.TimevalToNsec(end.Utime) + syscall.TimevalToNsec(end.Stime) -
		syscall.TimevalToNsec(c.start.Utime) - syscall.TimevalToNsec(c.start.Stime))
	switches := end.Nvcsw + end.Nivcsw - c.start.Nvcsw - c.start.Nivcsw
	n := float64(c.b.N)
	c.b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/op")
	c.b.ReportMetric(float64(switches)/n, "ctxsw/op")
}
