//go:build linux

package forward_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// moving is one forwarded connection that the test moves from forwarder
// to forwarder.
type moving struct {
	pair       *forward.Pair
	moves      int
	halfClosed chan struct{} // closed to let the server half-close
}

// start forwards between gwClient and gwUpstream on f.
func (m *moving) start(t *testing.T, f *forward.Forwarder, gwClient, gwUpstream net.Conn) {
	t.Helper()
	p, err := f.StartPair(gwClient.(*net.TCPConn), gwUpstream.(*net.TCPConn), forward.Meters{}, func(int64, int64) {})
	if err != nil {
		t.Fatal(err)
	}
	m.pair = p
}

// move exports m's pair and adopts it on to.
func (m *moving) move(t *testing.T, to *forward.Forwarder) forward.PairState {
	t.Helper()
	m.moves++
	// An echoing peer that can't write its echo back (the pair doesn't
	// read while quiesced) may stop reading, and then what the pair holds
	// can't be written: the export gives up in time and the pair goes on.
	// Try again.
	var ex forward.Exported
	var err error
	for range 10 {
		if ex, err = m.pair.Export(time.Second); !errors.Is(err, forward.ErrNotExported) {
			break
		}
	}
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	conns := [2]forward.Socket{}
	for i, f := range [2]*os.File{ex.Client, ex.Upstream} {
		c, err := net.FileConn(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.TCPConn)
	}
	p, err := to.AdoptPair(conns[0], conns[1], ex.State, forward.Meters{}, func(int64, int64) {})
	if err != nil {
		t.Fatalf("adopt: %v", err)
	}
	m.pair = p
	return ex.State
}

// TestExportAdoptByteExact moves connections between two forwarders
// ten times while they carry bulk both ways, then half-closes them and
// moves them again: every byte arrives once and in order, and the
// half-close carries over.
func TestExportAdoptByteExact(t *testing.T) {
	fs := [2]*forward.Forwarder{newForwarder(t), newForwarder(t)}
	const n = 4
	ms := make([]*moving, n)
	errs := make(chan error, n)
	stop := make(chan struct{})
	for i := range ms {
		client, gwClient := tcpPair(t)
		gwUpstream, server := tcpPair(t)
		// The server echoes, but half-closes only a little after EOF,
		// so that the test can move a half-closed pair.
		halfClosed := make(chan struct{})
		go func() {
			_, _ = io.Copy(server, server)
			<-halfClosed
			_ = server.(*net.TCPConn).CloseWrite()
		}()
		t.Cleanup(func() {
			select {
			case <-halfClosed:
			default:
				close(halfClosed)
			}
		})
		ms[i] = &moving{halfClosed: halfClosed}
		ms[i].start(t, fs[0], gwClient, gwUpstream)
		go func() { errs <- testutil.StreamEcho(client, stop, testTimeout) }()
	}
	moved := 0
	for round := range 10 {
		for _, m := range ms {
			if st := m.move(t, fs[(round+1)%2]); st.Bytes[0] > 0 && st.Bytes[1] > 0 {
				moved++
			}
		}
	}
	close(stop)
	// Once the client's EOF went through, move the half-closed pairs.
	for _, m := range ms {
		testutil.WaitFor(t, "the client's EOF to go through", testTimeout, func() bool { return m.halfDone(t, fs) })
		close(m.halfClosed)
	}
	for range ms {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if moved == 0 {
		t.Error("no connection was moved with bytes behind it")
	}
}

// halfDone moves m once more and reports whether its client→upstream
// direction had ended when it was moved.
func (m *moving) halfDone(t *testing.T, fs [2]*forward.Forwarder) bool {
	st := m.move(t, fs[m.moves%2])
	return st.Done[0] && !st.Done[1]
}

// TestExportOfEndedPair checks that a pair that ended can't be exported.
func TestExportOfEndedPair(t *testing.T) {
	f := newForwarder(t)
	_, gwClient := tcpPair(t)
	gwUpstream, _ := tcpPair(t)
	var m moving
	m.start(t, f, gwClient, gwUpstream)
	_ = m.pair.Close()
	if _, err := m.pair.Export(time.Second); !errors.Is(err, forward.ErrNotExported) {
		t.Fatalf("export of a closed pair: %v", err)
	}
}
