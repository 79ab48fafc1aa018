//go:build linux

package listener

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// cutAt is how many bytes of the member's answer the GOAWAY test lets
// through before it holds the rest: fewer than a frame header's nine, so
// that the client's connection is in the middle of a frame.
const cutAt = 3

// TestDrainGoAwayWaitsForAHeldFrame: a clientv3 client on member 0,
// behind a relay, puts; the relay lets the first bytes of the member's
// answer through and holds the rest, and member 0 is drained. The drain
// asks for a GOAWAY, which must wait for the frame's end: while held, the
// client gets no byte the member didn't write, and CloseIfQuiet refuses
// to close (the connection owes the client a GOAWAY), though the member
// spoke last. Once released, the GOAWAY goes out at the end of the frame
// that was cut, the put succeeds, the client closes the connection
// itself (the drain closes none), and its next puts go to member 1 on a
// new connection, without an error.
func TestDrainGoAwayWaitsForAHeldFrame(t *testing.T) {
	c := testutil.Cluster(t, 2)
	r := testutil.HoldRelay(t, c.Members[0].ClientAddr())
	l, pool := poolListener(t, upstream.Settings{Policy: config.PolicyLeastConnections}, r.Addr)
	tap := &clientTap{}
	cli := testutil.ClientWith(t, clientv3.Config{Endpoints: []string{l.Addr().String()}, DialOptions: []grpc.DialOption{grpc.WithContextDialer(tap.dial)}})
	mustPut(t, cli, 0)
	pool.UpdateFrom("config", resolver.Static([]string{r.Addr, c.Members[1].ClientAddr()}))
	puts, heldAt := holdPuts(t, l, r, cutAt, testutil.Client(t, c.Members[1].ClientAddr()), []*clientv3.Client{cli})
	testutil.WaitFor(t, "the cut answer's first bytes at the client", testTimeout, func() bool {
		return r.Passed() == heldAt && int64(len(tap.read(0))) == heldAt
	})
	from, to := poolEndpoint(t, pool, r.Addr), poolEndpoint(t, pool, c.Members[1].ClientAddr())
	drained := startDrain(pool, r.Addr)
	testutil.WaitFor(t, "the drain's GOAWAY asked", testTimeout, func() bool { return from.Stats().Moves.Drain == 1 })
	refuseToCloseMidFrame(t, l, r.Addr, tap, heldAt)
	checkMidFrame(t, tap, heldAt, puts, drained, from)
	r.Release()
	waitPuts(t, puts, 1)
	checkDrained(t, drained)
	for i := range 3 {
		mustPut(t, cli, i)
	}
	if from.OpenConns() != 0 || to.OpenConns() != 1 || tap.dials() != 2 {
		t.Fatalf("after the move: %d and %d connections open to members 0 and 1, %d dialled; want 0, 1 and 2", from.OpenConns(), to.OpenConns(), tap.dials())
	}
	checkGoAwayAt(t, tap.read(0), heldAt)
}

// refuseToCloseMidFrame makes the move that ends a connection sent a
// GOAWAY after its grace (closeLingering) of l's one connection to addr,
// the member's bytes cut in the middle of a frame: the member spoke last
// and nothing moved for a move's window, so only the GOAWAY the
// connection still owes its client keeps it open. Its request to the
// loop also comes after the drain's GOAWAY: that ran by its return. It
// waits no longer once the client read more than heldAt, the member's
// bytes: a GOAWAY in the middle of the frame, which the client fails.
func refuseToCloseMidFrame(t *testing.T, l *Listener, addr string, tap *clientTap, heldAt int64) {
	t.Helper()
	pc := connsTo(l, addr)[0]
	testutil.WaitFor(t, "quiet for a move's window", testTimeout, func() bool {
		return pc.forwarding().Activity().Quiet(time.Now(), 2*quietFor) || int64(len(tap.read(0))) != heldAt
	})
	if pc.CloseIfQuiet(quietFor) {
		t.Fatal("CloseIfQuiet closed a connection owing its client a GOAWAY, in the middle of the member's frame")
	}
}

// checkMidFrame fails t unless, with the member's frame held open, the
// client got just the member's bytes (no GOAWAY: it would be in the
// middle of the frame), the put is in flight, the drain goes on and the
// connection is open.
func checkMidFrame(t *testing.T, tap *clientTap, heldAt int64, puts <-chan error, drained <-chan drainEnd, from *upstream.Endpoint) {
	t.Helper()
	if got := int64(len(tap.read(0))); got != heldAt {
		t.Fatalf("the client read %d bytes, the member wrote %d: a GOAWAY went out in the middle of a frame", got, heldAt)
	}
	if len(puts) > 0 || len(drained) > 0 || from.OpenConns() != 1 {
		t.Fatalf("with the frame held: put ended %t, drain ended %t, %d connections open; want neither, 1", len(puts) > 0, len(drained) > 0, from.OpenConns())
	}
}

// drainEnd is what Pool.Drain returned.
type drainEnd struct {
	res upstream.DrainResult
	err error
}

// startDrain drains the endpoint at addr of pool in the background.
func startDrain(pool *upstream.Pool, addr string) <-chan drainEnd {
	done := make(chan drainEnd, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		res, err := pool.Drain(ctx, addr)
		done <- drainEnd{res, err}
	}()
	return done
}

// checkDrained fails t unless the drain ended with its one connection
// moved and none closed: the client closed it itself.
func checkDrained(t *testing.T, drained <-chan drainEnd) {
	t.Helper()
	select {
	case d := <-drained:
		if d.err != nil || d.res != (upstream.DrainResult{Moved: 1}) {
			t.Fatalf("Drain = %+v, %v; want 1 moved, none closed", d.res, d.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the drain never ended")
	}
}

// checkGoAwayAt fails t unless b, what the client read, is whole HTTP/2
// frames with one GOAWAY, which starts where the frame that byte
// heldAt-1 is in ends: the first boundary after the cut.
func checkGoAwayAt(t *testing.T, b []byte, heldAt int64) {
	t.Helper()
	frames, err := framesOf(b)
	if err != nil {
		t.Fatalf("the client's bytes: %v", err)
	}
	var goAways []int64
	cut := frameAt{start: -1, end: -1}
	for _, f := range frames {
		if f.typ == http2.FrameGoAway {
			goAways = append(goAways, f.start)
		}
		if f.start < heldAt && heldAt <= f.end {
			cut = f
		}
	}
	t.Logf("the member's bytes were cut %d bytes into a %v frame of %d bytes", heldAt-cut.start, cut.typ, cut.end-cut.start)
	if len(goAways) != 1 || goAways[0] != cut.end {
		t.Fatalf("GOAWAYs at %v; want one, at %d, where the frame cut at %d ends", goAways, cut.end, heldAt)
	}
}

// frameAt is an HTTP/2 frame a client read: its type, and where it starts
// and ends among the bytes.
type frameAt struct {
	typ        http2.FrameType
	start, end int64
}

// framesOf splits b, what a client read, into HTTP/2 frames; anything but
// whole frames is an error.
func framesOf(b []byte) ([]frameAt, error) {
	fr := http2.NewFramer(io.Discard, bytes.NewReader(b))
	var out []frameAt
	for at := int64(0); ; {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("at %d: %w", at, err)
		}
		end := at + http2FrameHeader + int64(f.Header().Length)
		out = append(out, frameAt{typ: f.Header().Type, start: at, end: end})
		at = end
	}
}

// http2FrameHeader is the size of an HTTP/2 frame header.
const http2FrameHeader = 9

// clientTap records what an etcd client reads on each connection it
// dials: the gateway's bytes, GOAWAY included, as the client got them.
type clientTap struct {
	mu    sync.Mutex
	reads []*bytes.Buffer
}

// dial is a gRPC dialer that connects to addr and records its reads.
func (tp *clientTap) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.reads = append(tp.reads, &bytes.Buffer{})
	return &tappedConn{Conn: c, tap: tp, into: tp.reads[len(tp.reads)-1]}, nil
}

// dials is how many connections the client dialled.
func (tp *clientTap) dials() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.reads)
}

// read is a copy of what the client read on its connection i so far.
func (tp *clientTap) read(i int) []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Clone(tp.reads[i].Bytes())
}

// tappedConn is a connection whose reads a clientTap records.
type tappedConn struct {
	net.Conn
	tap  *clientTap
	into *bytes.Buffer
}

func (c *tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.tap.mu.Lock()
	defer c.tap.mu.Unlock()
	c.into.Write(p[:n])
	return n, err
}
