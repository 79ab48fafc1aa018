package forward_test

import (
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// notSocket hides a connection's descriptor, as TLS does: the forwarder
// copies it with goroutines.
type notSocket struct{ net.Conn }

// engines wrap the gateway's ends of a connection so that the forwarder
// carries it with each of its engines: sockets on a loop's pair (the
// copy, off Linux), anything else (TLS) on the copy.
var engines = map[string]func(net.Conn) net.Conn{
	"loop": func(c net.Conn) net.Conn { return c },
	"copy": func(c net.Conn) net.Conn { return notSocket{c} },
}

// forwardingOf starts forwarding with the engine wrap picks: client ⇄
// [fwd] ⇄ server; done gets the byte counts when it ends.
func forwardingOf(t *testing.T, f *forward.Forwarder, wrap func(net.Conn) net.Conn) (fwd forward.Forwarding, client, server net.Conn, done <-chan [2]int64) {
	t.Helper()
	client, gwClient := tcpPair(t)
	gwUpstream, server := tcpPair(t)
	ch := make(chan [2]int64, 1)
	fwd, err := f.Start(wrap(gwClient), wrap(gwUpstream), func(up, down int64) { ch <- [2]int64{up, down} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	return fwd, client, server, ch
}

// TestActivity follows a request and its answer through both engines:
// a request sent is unanswered and never quiet, an answer makes the
// member the last to speak, and only a window without bytes makes it
// quiet.
func TestActivity(t *testing.T) {
	for name, wrap := range engines {
		t.Run(name, func(t *testing.T) {
			fwd, client, server, _ := forwardingOf(t, newForwarder(t), wrap)
			const window = time.Second
			start := time.Now()
			if a := fwd.Activity(); !a.Unanswered.IsZero() || !a.Quiet(start.Add(window), window) {
				t.Fatalf("a new forwarding is not quiet: %+v", a)
			}
			requestWaits(t, fwd, client, server)
			answerIsQuietAfterAWindow(t, fwd, client, server, window)
		})
	}
}

// requestWaits sends a request the server reads but doesn't answer: the
// forwarding owes an answer, and no window makes it quiet.
func requestWaits(t *testing.T, fwd forward.Forwarding, client, server net.Conn) {
	t.Helper()
	sent := time.Now()
	if _, err := client.Write([]byte("put")); err != nil {
		t.Fatal(err)
	}
	readN(t, server, 3)
	// The engine records a write just after the kernel took it.
	var a forward.Activity
	testutil.WaitFor(t, "the request to be unanswered", 5*time.Second, func() bool {
		a = fwd.Activity()
		return !a.Unanswered.IsZero()
	})
	if a.Unanswered.Before(sent) {
		t.Fatalf("a request read by the member is not unanswered since it was sent (%s): %+v", sent, a)
	}
	if a.Quiet(time.Now().Add(time.Hour), time.Second) {
		t.Fatal("a forwarding that owes an answer is quiet")
	}
	// More bytes to the member keep the first unanswered time.
	if _, err := client.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	readN(t, server, 4)
	if again := fwd.Activity(); !again.Unanswered.Equal(a.Unanswered) {
		t.Fatalf("unanswered moved from %s to %s with more bytes", a.Unanswered, again.Unanswered)
	}
}

// answerIsQuietAfterAWindow answers: nothing is owed, and the forwarding
// is quiet once a window has passed since the answer, not before.
func answerIsQuietAfterAWindow(t *testing.T, fwd forward.Forwarding, client, server net.Conn, window time.Duration) {
	t.Helper()
	if _, err := server.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	readN(t, client, 2)
	var a forward.Activity
	testutil.WaitFor(t, "the answer to clear unanswered", 5*time.Second, func() bool {
		a = fwd.Activity()
		return a.Unanswered.IsZero()
	})
	if a.ToClient.Before(a.ToUpstream) {
		t.Fatalf("the answer was written before the request: %+v", a)
	}
	if a.Quiet(a.ToClient.Add(window/2), window) {
		t.Fatal("quiet within the window after the answer")
	}
	if !a.Quiet(a.ToClient.Add(window), window) {
		t.Fatalf("not quiet a window after the answer: %+v", a)
	}
}

// readN reads n bytes from c, within a deadline.
func readN(t *testing.T, c net.Conn, n int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	for got := 0; got < n; {
		k, err := c.Read(buf[got:])
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got += k
	}
}
