//go:build linux

package forward_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
	"golang.org/x/sys/unix"
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
	p, err := to.AdoptFDs(ex.Client, ex.Upstream, ex.State, forward.Meters{}, func(int64, int64) {})
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

// TestExportGivesUpDescriptors checks that an export hands the pair's own
// descriptors over: the old pair no longer uses them (its Control fails,
// its Close shuts nothing down), Peer tells the client's address, and the
// connection forwards on once adopted elsewhere.
func TestExportGivesUpDescriptors(t *testing.T) {
	f, to := newForwarder(t), newForwarder(t)
	client, gwClient := tcpPair(t)
	gwUpstream, server := tcpPair(t)
	var m moving
	m.start(t, f, gwClient, gwUpstream)
	old := m.pair
	ex, err := old.Export(time.Second)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := old.Control(0, func(uintptr) { t.Error("Control ran on a descriptor given up") }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Control after export: %v, want net.ErrClosed", err)
	}
	_ = old.Close() // must not shut the connection down
	peer, isUnix, err := forward.Peer(ex.Client)
	if err != nil || isUnix || peer.String() != client.LocalAddr().String() {
		t.Errorf("Peer = %v, %v, %v; want %v, false, nil", peer, isUnix, err, client.LocalAddr())
	}
	if _, err := to.AdoptFDs(ex.Client, ex.Upstream, ex.State, forward.Meters{}, func(int64, int64) {}); err != nil {
		t.Fatalf("adopt: %v", err)
	}
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(testTimeout))
	got := make([]byte, 4)
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "ping" {
		t.Fatalf("after adoption the server read %q, %v; want ping", got, err)
	}
}

// TestAdoptFDsClosesOnError checks that an adoption that fails (the
// forwarder closed) closes the descriptors it was given.
func TestAdoptFDsClosesOnError(t *testing.T) {
	f := newForwarder(t)
	_ = f.Close()
	_, gwClient := tcpPair(t)
	gwUpstream, _ := tcpPair(t)
	fds := [2]int{dupFD(t, gwClient), dupFD(t, gwUpstream)}
	if _, err := f.AdoptFDs(fds[0], fds[1], forward.PairState{}, forward.Meters{}, func(int64, int64) {
		t.Error("done called for a pair not adopted")
	}); err == nil {
		t.Fatal("a closed forwarder adopted a pair")
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("descriptor %d still open after a failed adoption: %v", fd, err)
		}
	}
}

// dupFD returns a duplicate of c's descriptor, non-blocking like c's.
func dupFD(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.Dup(int(s)) }); err != nil || dupErr != nil {
		t.Fatal(err, dupErr)
	}
	return fd
}

// BenchmarkExportAdopt moves a batch of 125 idle pairs (a handover's
// batch) from one forwarder to another and back: ExportBatch, then
// AdoptFDs of each. ns/op is per pair moved.
//
//	go test -run XXX -bench ExportAdopt ./listener/forward/
func BenchmarkExportAdopt(b *testing.B) {
	const n = 125
	fs := [2]*forward.Forwarder{newForwarder(b), newForwarder(b)}
	pairs := make([]*forward.Pair, n)
	for i := range pairs {
		_, gwClient := tcpPair(b)
		gwUpstream, _ := tcpPair(b)
		p, err := fs[0].StartPair(gwClient.(*net.TCPConn), gwUpstream.(*net.TCPConn), forward.Meters{}, func(int64, int64) {})
		if err != nil {
			b.Fatal(err)
		}
		pairs[i] = p
	}
	b.ResetTimer()
	for round := 0; round*n < b.N; round++ {
		for i, r := range forward.ExportBatch(pairs, time.Second) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			p, err := fs[(round+1)%2].AdoptFDs(r.Client, r.Upstream, r.State, forward.Meters{}, func(int64, int64) {})
			if err != nil {
				b.Fatal(err)
			}
			pairs[i] = p
		}
	}
}
