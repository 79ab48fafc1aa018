package forward_test

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// byteMeter is a forward.Meter that sums what every loop counts into it.
type byteMeter struct{ toUpstream, toClient atomic.Int64 }

// Count adds the bytes moved each way.
func (m *byteMeter) Count(_ int, toUpstream, toClient int64) {
	m.toUpstream.Add(toUpstream)
	m.toClient.Add(toClient)
}

// load returns the bytes counted so far each way.
func (m *byteMeter) load() (toUpstream, toClient int64) {
	return m.toUpstream.Load(), m.toClient.Load()
}

// TestMetersMoveWhileOpen: both forwarders (the event loop for sockets, the
// copy goroutines for TLS and other conns) count bytes into their meters as
// they move, and the end of the connection adds nothing more.
func TestMetersMoveWhileOpen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pairs func(t *testing.T) (client, gwClient, gwUpstream, backend net.Conn)
	}{
		{"sockets", tcpPairs},
		{"copy", pipePairs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, gwClient, gwUpstream, backend := tc.pairs(t)
			lm, em := &byteMeter{}, &byteMeter{}
			m := forward.Meters{Listener: lm, Endpoint: em}
			done := make(chan [2]int64, 1)
			f := newForwarder(t)
			if _, err := f.StartMetered(gwClient, gwUpstream, m, func(up, down int64) { done <- [2]int64{up, down} }); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				echoThrough(t, client, backend, 1000)
				waitMeters(t, lm, em, int64(1000*i))
			}
			client.Close()
			backend.Close()
			if got := <-done; got != [2]int64{3000, 3000} {
				t.Fatalf("done counted %v, want 3000 each way", got)
			}
			waitMeters(t, lm, em, 3000)
		})
	}
}

// echoThrough sends n bytes from client to backend and back.
func echoThrough(t *testing.T, client, backend net.Conn, n int) {
	t.Helper()
	buf := make([]byte, n)
	errc := make(chan error, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(backend, b)
		if err == nil {
			_, err = backend.Write(b)
		}
		errc <- err
	}()
	if _, err := client.Write(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// waitMeters waits until both meters count want bytes each way.
func waitMeters(t *testing.T, listener, endpoint *byteMeter, want int64) {
	t.Helper()
	testutil.WaitFor(t, "the meters to count the bytes", 5*time.Second, func() bool {
		lu, ld := listener.load()
		eu, ed := endpoint.load()
		return lu == want && ld == want && eu == want && ed == want
	})
}

// tcpPairs returns two connected TCP pairs: client–gwClient and
// gwUpstream–backend.
func tcpPairs(t *testing.T) (client, gwClient, gwUpstream, backend net.Conn) {
	client, gwClient = tcpPair(t)
	gwUpstream, backend = tcpPair(t)
	return client, gwClient, gwUpstream, backend
}

// pipePairs returns two in-memory pairs, which are no sockets: the
// forwarder copies them with goroutines, as it does TLS.
func pipePairs(t *testing.T) (client, gwClient, gwUpstream, backend net.Conn) {
	client, gwClient = net.Pipe()
	gwUpstream, backend = net.Pipe()
	t.Cleanup(func() { _, _ = client.Close(), backend.Close() })
	return client, gwClient, gwUpstream, backend
}
