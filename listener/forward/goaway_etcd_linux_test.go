//go:build linux

package forward_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// forwardedPair is a connection a proxy forwards, and its end.
type forwardedPair struct {
	p    *forward.Pair
	done chan [2]int64
}

// proxy forwards each connection to ln to member on a pair of f, and
// sends each pair on the returned channel.
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
			if fp.p, err = f.StartPair(c.(*net.TCPConn), up.(*net.TCPConn), forward.Meters{}, func(u, d int64) { fp.done <- [2]int64{u, d} }); err == nil {
				pairs <- fp
			}
		}
	}()
	return pairs
}

// TestGoAwayMovesAnEtcdClient: a clientv3 client sent a GOAWAY puts on a
// new connection without an error, and closes the old one itself.
func TestGoAwayMovesAnEtcdClient(t *testing.T) {
	c := testutil.Cluster(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	pairs := proxy(t, newForwarder(t), ln, c.ClientAddrs()[0])
	cli := testutil.Client(t, ln.Addr().String())
	put(t, cli, 0)
	first := nextPair(t, pairs)
	if !first.p.GoAway() {
		t.Fatal("GoAway reports that an etcd client's connection doesn't speak HTTP/2")
	}
	for i := 1; i <= 20; i++ {
		put(t, cli, i)
	}
	nextPair(t, pairs) // the new connection
	select {
	case <-first.done: // the client closed the old one
	case <-time.After(testTimeout):
		t.Fatal("the client kept the connection it was sent a GOAWAY on")
	}
}

// put puts value i, failing the test on an error.
func put(t *testing.T, cli *clientv3.Client, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := cli.Put(ctx, "key", fmt.Sprint(i)); err != nil {
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
