//go:build linux

package forward_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// pairOf starts forwarding on a loop's pair: client ⇄ [pair] ⇄ server;
// done gets the byte counts when it ends.
func pairOf(t *testing.T, f *forward.Forwarder) (p *forward.Pair, client, server net.Conn, done <-chan [2]int64) {
	t.Helper()
	fwd, client, server, done := forwardingOf(t, f, engines["loop"])
	return fwd.(*forward.Pair), client, server, done
}

// send writes b to c and has peer read it all.
func send(t *testing.T, c, peer net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(b))
	_ = peer.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("read %q, %v; want %q", got, err, b)
	}
}

// pending is how many bytes c has received and not read: after a Sync of
// the pair, what its loop wrote to a loopback socket is there.
func pending(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n, ioErr := 0, error(nil)
	if err := raw.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ioErr != nil {
		t.Fatal(err, ioErr)
	}
	return n
}

// frame is an HTTP/2 frame as the member writes it.
func frame(typ http2.FrameType, stream uint32, payload []byte) []byte {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	_ = fr.WriteRawFrame(typ, 0, stream, payload)
	return b.Bytes()
}

// TestGoAwayAtAFrameBoundary: a GOAWAY asked while the member is in the
// middle of a frame waits for the frame's end, then goes before the
// member's next frame, which follows it.
func TestGoAwayAtAFrameBoundary(t *testing.T) {
	p, client, server, _ := pairOf(t, newForwarder(t))
	send(t, client, server, []byte(http2.ClientPreface))
	data := frame(http2.FrameData, 1, []byte("0123456789"))
	send(t, server, client, data[:14]) // the header and half the payload
	if !p.GoAway() {
		t.Fatal("GoAway reports that a connection that sent the preface doesn't speak HTTP/2")
	}
	p.Sync()
	if n := pending(t, client); n != 0 {
		t.Fatalf("%d bytes reached the client in the middle of a frame", n)
	}
	ping := frame(http2.FramePing, 0, []byte("12345678"))
	if _, err := server.Write(append(data[14:], ping...)); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	fr := http2.NewFramer(nil, io.MultiReader(bytes.NewReader(data[:14]), client))
	for i, want := range []http2.FrameType{http2.FrameData, http2.FrameGoAway, http2.FramePing} {
		f, err := fr.ReadFrame()
		if err != nil || f.Header().Type != want {
			t.Fatalf("frame %d: %v, %v; want %v", i, f, err, want)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok && (ga.LastStreamID != 1<<31-1 || ga.ErrCode != http2.ErrCodeNo || ga.StreamID != 0) {
			t.Fatalf("GOAWAY %v; want last stream 2^31-1, NO_ERROR, on stream 0", ga)
		}
	}
}

// TestNoGoAwayForOtherBytes: a connection that doesn't begin with the
// preface gets no GOAWAY, its member's bytes only.
func TestNoGoAwayForOtherBytes(t *testing.T) {
	p, client, server, _ := pairOf(t, newForwarder(t))
	send(t, client, server, []byte("PRI * HTTP/1.1\r\n\r\n"))
	if p.GoAway() {
		t.Fatal("GoAway reports HTTP/2 for a connection that sent no preface")
	}
	send(t, server, client, frame(http2.FramePing, 0, []byte("12345678")))
	p.Sync()
	if n := pending(t, client); n != 0 {
		t.Fatalf("%d bytes the member never sent reached the client", n)
	}
}

// TestCloseIfQuietRefusesUnreadBytes: a request in the client's socket
// that the loop has not read yet is in flight; once answered, the
// connection is quiet and closed.
func TestCloseIfQuietRefusesUnreadBytes(t *testing.T) {
	p, client, server, done := pairOf(t, newForwarder(t))
	closed, err := p.CloseIfQuietAfter(client, []byte("request"), 0)
	if err != nil || closed {
		t.Fatalf("CloseIfQuiet = %v, %v with a request unread; want false", closed, err)
	}
	got := make([]byte, len("request"))
	_ = server.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatal(err)
	}
	send(t, server, client, []byte("answer"))
	// The loop records its write to the client just after the client can
	// read it: the answer makes the connection quiet a moment later.
	testutil.WaitFor(t, "CloseIfQuiet to close the answered connection", testTimeout, func() bool { return p.CloseIfQuiet(0) })
	waitDone(t, done)
}
