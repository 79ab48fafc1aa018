package listener

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// serve runs a listener on a fresh loopback port in front of eps. It
// returns the address, the listener and a stop function that shuts the
// listener, its pool and its forwarder down.
func serve(t *testing.T, s upstream.Settings, eps ...string) (string, *Listener, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pool := upstream.NewPool(upstream.Options{Settings: s, Log: testutil.Logger(t)})
	pool.UpdateFrom("config", resolver.Static(eps))
	f := newForwarder(t)
	l, err := New("main", ln, pool, Options{Forwarder: f, Log: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = l.Shutdown(ctx)
			pool.Close()
			_ = f.Close() // as its owner does, once every listener drained
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), l, stop
}

// clients runs n clients, concurrency at a time; each dials addr and runs
// do. It returns how many succeeded and the first error.
func clients(n, concurrency int, addr string, do func(i int, c net.Conn) error) (int64, error) {
	var good atomic.Int64
	var firstErr atomic.Pointer[error]
	var next atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err == nil {
					err = do(i, c)
					c.Close()
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				good.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return good.Load(), *e
	}
	return good.Load(), nil
}

func echoOnce(i int, c net.Conn) error { return testutil.RoundTrip(c, fmt.Sprintf("client %d", i)) }

// TestFailoverPastBadEndpointsWithoutLeaks puts a refusing, a blackholed
// and a flapping endpoint beside a good one: every client gets through,
// and no goroutine or descriptor is left behind.
func TestFailoverPastBadEndpointsWithoutLeaks(t *testing.T) {
	good := testutil.Echo(t)
	hole := testutil.Blackhole(t)
	flap := testutil.Flap(t, 150*time.Millisecond)
	refused := testutil.RefusingAddr(t)
	before := testutil.Count(t)

	addr, l, stop := serve(t, upstream.Settings{DialTimeout: 200 * time.Millisecond, RetryDelay: 50 * time.Millisecond},
		refused, hole, flap.Addr, good.Addr)
	// Bounded: 400 clients, 8 at a time, across many flaps and re-probes.
	// A client whose member goes down mid-exchange sees its connection
	// end, closed or reset as the member's kernel ended it (a listener
	// closed with connections in its backlog resets them), and reconnects
	// once, as etcd clients do.
	var reconnects atomic.Int64
	ok, err := clients(400, 8, addr, func(i int, c net.Conn) error {
		if err := echoOnce(i, c); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			return err
		}
		reconnects.Add(1)
		c2, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c2.Close()
		return echoOnce(i, c2)
	})
	if ok != 400 {
		t.Fatalf("%d of 400 clients got through, first error: %v", ok, err)
	}
	if got, want := l.TotalConns(), 400+uint64(reconnects.Load()); got != want {
		t.Fatalf("listener accepted %d connections, want %d", got, want)
	}
	stop()
	flap.Stop()
	testutil.NoLeak(t, before, 2)
}

// TestEndpointsThatDropConnectionsDontHangOrLeak: members that accept and
// close at once, or reset every connection, can't be seen by a dial (the
// handshake succeeds), so their clients get a prompt close, never a hang.
func TestEndpointsThatDropConnectionsDontHangOrLeak(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server func(testing.TB) *testutil.Server
	}{
		{"accept then close", testutil.AcceptThenClose},
		{"reset every connection", testutil.Resetter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.server(t)
			before := testutil.Count(t)
			addr, _, stop := serve(t, upstream.Settings{DialTimeout: time.Second, RetryDelay: time.Hour}, srv.Addr)
			ok, _ := clients(200, 8, addr, func(i int, c net.Conn) error {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Write([]byte("hello"))
				_, err := c.Read(make([]byte, 1))
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return fmt.Errorf("client %d hung: %w", i, err)
				}
				if err == nil {
					return fmt.Errorf("client %d read data from a server that sends none", i)
				}
				return nil
			})
			if ok != 200 {
				t.Fatalf("%d of 200 clients saw a prompt close", ok)
			}
			stop()
			testutil.NoLeak(t, before, 2)
		})
	}
}

// TestAbusiveClientsNeverHurtTheListener sends garbage, half-closes at once
// and resets at once, then checks that a normal client is still served and
// that nothing leaked.
func TestAbusiveClientsNeverHurtTheListener(t *testing.T) {
	backend := testutil.Echo(t)
	before := testutil.Count(t)
	addr, l, stop := serve(t, upstream.Settings{DialTimeout: time.Second, RetryDelay: time.Hour}, backend.Addr)

	garbage := make([]byte, 64<<10)
	_, _ = rand.Read(garbage)
	abuses := map[string]func(i int, c net.Conn) error{
		"garbage": func(i int, c net.Conn) error {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			go func() { _, _ = c.Write(garbage) }()
			_, err := io.ReadFull(c, make([]byte, len(garbage))) // echoed back byte for byte
			return err
		},
		"half-open": func(i int, c net.Conn) error {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				return err
			}
			_, err := io.ReadAll(c) // EOF comes back: the half-close went through
			return err
		},
		"instant reset": func(i int, c net.Conn) error {
			return c.(*net.TCPConn).SetLinger(0) // and closed by clients()
		},
		"connect and vanish": func(i int, c net.Conn) error { return nil },
	}
	for name, abuse := range abuses {
		if ok, err := clients(200, 16, addr, abuse); ok != 200 {
			t.Fatalf("%s: %d of 200 went as expected, first error: %v", name, ok, err)
		}
	}
	if ok, err := clients(20, 4, addr, echoOnce); ok != 20 {
		t.Fatalf("after the abuse %d of 20 normal clients were served: %v", ok, err)
	}
	testutil.WaitFor(t, "every connection to end", 10*time.Second, func() bool { return l.OpenConns() == 0 })
	stop()
	testutil.NoLeak(t, before, 2)
}
