//go:build linux

package forward_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// forwardedPair is a connection a proxy forwards, and its end.
type forwardedPair struct {
	fwd  forward.Forwarding
	done chan [2]int64
}

// proxy forwards each connection to ln to member with f, and sends each
// forwarding on the returned channel. A TLS listener's connections are
// copied, sockets forwarded on a loop's pair.
func proxy(t *testing.T, f *forward.Forwarder, ln net.Listener, member string) <-chan forwardedPair {
	pairs := make(chan forwardedPair, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", member)
			if err != nil {
				_ = c.Close()
				continue
			}
			fp := forwardedPair{done: make(chan [2]int64, 1)}
			if fp.fwd, err = f.StartMetered(c, up, forward.Meters{}, func(u, d int64) { fp.done <- [2]int64{u, d} }); err == nil {
				pairs <- fp
			}
		}
	}()
	return pairs
}

// TestGoAwayMovesAnEtcdClient: a clientv3 client sent a GOAWAY while it
// puts from several goroutines puts on a new connection without an
// error, and closes the old one itself: plaintext on a loop's pair, and
// through a proxy that terminates its TLS, on the copy.
func TestGoAwayMovesAnEtcdClient(t *testing.T) {
	c := testutil.Cluster(t, 1)
	serve, dial := loopbackTLS(t)
	for name, conf := range map[string][2]*tls.Config{"plaintext": {}, "tls": {serve, dial}} {
		t.Run(name, func(t *testing.T) { goAwayMovesAnEtcdClient(t, c.ClientAddrs()[0], conf[0], conf[1]) })
	}
}

// goAwayMovesAnEtcdClient runs TestGoAwayMovesAnEtcdClient through a proxy
// to member that serves TLS with serve, the client dialling with dial;
// nil for neither, plain TCP.
func goAwayMovesAnEtcdClient(t *testing.T, member string, serve, dial *tls.Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	if serve != nil {
		ln = tls.NewListener(ln, serve)
	}
	pairs := proxy(t, newForwarder(t), ln, member)
	cli := testutil.ClientWith(t, clientv3.Config{Endpoints: []string{ln.Addr().String()}, TLS: dial})
	put(t, cli, 0)
	first := nextPair(t, pairs)
	if _, onPair := first.fwd.Movable(); onPair != (serve == nil) {
		t.Fatalf("forwarded on a loop's pair: %v; want %v", onPair, serve == nil)
	}
	puts, stop := keepPutting(t, cli)
	testutil.WaitFor(t, "puts under way", testTimeout, func() bool { return puts.Load() >= 20 })
	if !first.fwd.GoAway() {
		t.Fatal("GoAway reports that an etcd client's connection doesn't speak HTTP/2")
	}
	nextPair(t, pairs) // the new connection
	select {
	case <-first.done: // the client closed the old one
	case <-time.After(testTimeout):
		t.Fatal("the client kept the connection it was sent a GOAWAY on")
	}
	moved := puts.Load()
	testutil.WaitFor(t, "puts on the new connection", testTimeout, func() bool { return puts.Load() >= moved+20 })
	if err := stop(); err != nil {
		t.Fatalf("a put failed across the move (%d puts): %v", puts.Load(), err)
	}
}

// loopbackTLS returns a server configuration for 127.0.0.1 offering h2,
// as the gateway's TLS listeners do (gRPC insists on it), and a client
// configuration that trusts it.
func loopbackTLS(t *testing.T) (serve, dial *tls.Config) {
	t.Helper()
	ca, err := tlstest.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}, &tls.Config{RootCAs: ca.Pool()}
}

// keepPutting puts through cli from a few goroutines at once, so that a
// GOAWAY meets streams in flight, until stop (called at cleanup too),
// which returns the first error.
func keepPutting(t *testing.T, cli *clientv3.Client) (puts *atomic.Int64, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	puts = new(atomic.Int64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := putOnce(cli, g, i); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
				puts.Add(1)
			}
		})
	}
	stop = sync.OnceValue(func() error { cancel(); wg.Wait(); return first })
	t.Cleanup(func() { _ = stop() })
	return puts, stop
}

// putOnce puts value i of goroutine g, within the test timeout.
func putOnce(cli *clientv3.Client, g, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := cli.Put(ctx, fmt.Sprint("key", g), fmt.Sprint(i))
	return err
}

// put puts value i, failing the test on an error.
func put(t *testing.T, cli *clientv3.Client, i int) {
	t.Helper()
	if err := putOnce(cli, 0, i); err != nil {
		t.Fatalf("put %d: %v", i, err)
	}
}

// nextPair is the next connection the proxy forwards.
func nextPair(t *testing.T, pairs <-chan forwardedPair) forwardedPair {
	t.Helper()
	select {
	case fp := <-pairs:
		return fp
	case <-time.After(testTimeout):
		t.Fatal("no connection came")
		return forwardedPair{}
	}
}
