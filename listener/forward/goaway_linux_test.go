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

// syncGoAway returns once what GoAway asked of fwd is done: the GOAWAY
// written, or held until the member's frame ends.
func syncGoAway(fwd forward.Forwarding) { fwd.(interface{ Sync() }).Sync() }

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

// TestGoAwayAtAFrameBoundary: with either engine, a GOAWAY asked while
// the member is in the middle of a frame waits for the frame's end, then
// goes before the member's next frame, which follows it.
func TestGoAwayAtAFrameBoundary(t *testing.T) {
	for name, wrap := range engines {
		t.Run(name, func(t *testing.T) {
			fwd, client, server, _ := forwardingOf(t, newForwarder(t), wrap)
			send(t, client, server, []byte(http2.ClientPreface))
			data := frame(http2.FrameData, 1, []byte("0123456789"))
			send(t, server, client, data[:14]) // the header and half the payload
			askGoAway(t, fwd)
			if n := pending(t, client); n != 0 {
				t.Fatalf("%d bytes reached the client in the middle of a frame", n)
			}
			testutil.WaitFor(t, "a quiet moment", 5*time.Second, func() bool { return fwd.Activity().Quiet(time.Now(), 10*time.Millisecond) })
			if fwd.CloseIfQuiet(10 * time.Millisecond) {
				t.Fatal("CloseIfQuiet closed a connection that owes its client a GOAWAY")
			}
			ping := frame(http2.FramePing, 0, []byte("12345678"))
			if _, err := server.Write(append(data[14:], ping...)); err != nil {
				t.Fatal(err)
			}
			readFrames(t, client, data[:14], http2.FrameData, http2.FrameGoAway, http2.FramePing)
		})
	}
}

// TestGoAwayWhenIdle: with either engine, a GOAWAY asked while the member
// is silent between two frames is written at once; asked again, it is
// not written again; and it counts among the bytes to the client.
func TestGoAwayWhenIdle(t *testing.T) {
	for name, wrap := range engines {
		t.Run(name, func(t *testing.T) {
			fwd, client, server, done := forwardingOf(t, newForwarder(t), wrap)
			send(t, client, server, []byte(http2.ClientPreface))
			settings := frame(http2.FrameSettings, 0, nil)
			send(t, server, client, settings)
			askGoAway(t, fwd)
			readFrames(t, client, nil, http2.FrameGoAway)
			askGoAway(t, fwd)
			if n := pending(t, client); n != 0 {
				t.Fatalf("%d more bytes reached the client on a second GoAway", n)
			}
			_, _ = client.Close(), server.Close()
			goAway := frame(http2.FrameGoAway, 0, make([]byte, 8))
			waitCounts(t, done, [2]int64{int64(len(http2.ClientPreface)), int64(len(settings) + len(goAway))})
		})
	}
}

// TestGoAwayDoesntWaitForTheClient: with either engine, GoAway returns
// while the member's frame waits for a client that doesn't read, and the
// GOAWAY follows that frame once the client reads.
func TestGoAwayDoesntWaitForTheClient(t *testing.T) {
	for name, wrap := range engines {
		t.Run(name, func(t *testing.T) {
			fwd, client, server, _ := forwardingOf(t, newForwarder(t), wrap)
			send(t, client, server, []byte(http2.ClientPreface))
			// More than the sockets on the way hold: the writer is stuck
			// in the frame until the client reads.
			data := frame(http2.FrameData, 1, make([]byte, 1<<24-1))
			go func() { _, _ = server.Write(data) }()
			last := 0
			testutil.WaitFor(t, "the frame to fill the client's socket", testTimeout, func() bool {
				n := pending(t, client)
				full := n > 0 && n == last
				last = n
				return full
			})
			asked := make(chan bool, 1)
			go func() { asked <- fwd.GoAway() }()
			select {
			case ok := <-asked:
				if !ok {
					t.Fatal("GoAway reports that a connection that sent the preface doesn't speak HTTP/2")
				}
			case <-time.After(testTimeout):
				t.Fatal("GoAway waits for a client that doesn't read")
			}
			readFrames(t, client, nil, http2.FrameData, http2.FrameGoAway)
		})
	}
}

// askGoAway asks fwd for a GOAWAY, which a connection that sent the
// preface must take, and waits until it is asked.
func askGoAway(t *testing.T, fwd forward.Forwarding) {
	t.Helper()
	if !fwd.GoAway() {
		t.Fatal("GoAway reports that a connection that sent the preface doesn't speak HTTP/2")
	}
	syncGoAway(fwd)
}

// readFrames reads frames of the types want from client, after the bytes
// of them it read already, a GOAWAY checked to be the gateway's: last
// stream 2^31-1, NO_ERROR, on stream 0.
func readFrames(t *testing.T, client net.Conn, read []byte, want ...http2.FrameType) {
	t.Helper()
	_ = client.SetReadDeadline(time.Now().Add(testTimeout))
	fr := http2.NewFramer(nil, io.MultiReader(bytes.NewReader(read), client))
	fr.SetMaxReadFrameSize(1<<24 - 1)
	for i, typ := range want {
		f, err := fr.ReadFrame()
		if err != nil || f.Header().Type != typ {
			t.Fatalf("frame %d: %v, %v; want %v", i, f, err, typ)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok && (ga.LastStreamID != 1<<31-1 || ga.ErrCode != http2.ErrCodeNo || ga.StreamID != 0) {
			t.Fatalf("GOAWAY %v; want last stream 2^31-1, NO_ERROR, on stream 0", ga)
		}
	}
}

// TestNoGoAwayForOtherBytes: with either engine, a connection that
// doesn't begin with the preface gets no GOAWAY, its member's bytes only.
func TestNoGoAwayForOtherBytes(t *testing.T) {
	for name, wrap := range engines {
		t.Run(name, func(t *testing.T) {
			fwd, client, server, _ := forwardingOf(t, newForwarder(t), wrap)
			send(t, client, server, []byte("PRI * HTTP/1.1\r\n\r\n"))
			if fwd.GoAway() {
				t.Fatal("GoAway reports HTTP/2 for a connection that sent no preface")
			}
			send(t, server, client, frame(http2.FramePing, 0, []byte("12345678")))
			syncGoAway(fwd)
			if n := pending(t, client); n != 0 {
				t.Fatalf("%d bytes the member never sent reached the client", n)
			}
		})
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
