package listener

import (
	"net"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestAcceptPausesAtTheReserve gives a listener a budget with room for a
// few connections above its reserve: it stops accepting, counts the pause,
// resumes when a connection ends, and a Shutdown while paused returns.
func TestAcceptPausesAtTheReserve(t *testing.T) {
	l := newListener(t, testutil.Echo(t).Addr)
	// 10 descriptors besides the proxied connections', and room for 4 of
	// those (2 descriptors each) above the reserve.
	b := &FDBudget{}
	b.count = func() (int64, error) { return b.held.Load() + 10, nil }
	b.setLimit(10 + minFDReserve + 8)
	l.fds = b
	go func() { _ = l.Serve() }()

	served := dialThrough(t, l, 4)
	waiting, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	testutil.WaitFor(t, "accepting to pause", 5*time.Second, func() bool { return b.paused.Load() == 1 })
	if n := l.OpenConns(); n != 4 || b.pauses.Load() != 1 {
		t.Fatalf("paused with %d connections open, %d pauses; want 4 and 1", n, b.pauses.Load())
	}
	served[0].Close()
	roundTrip(t, waiting, []byte("served after the pause"))

	// Paused again, with the waiting client: Close still returns.
	extra, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	testutil.WaitFor(t, "accepting to pause again", 5*time.Second, func() bool { return b.paused.Load() == 1 })
	closed := make(chan struct{})
	go func() {
		_ = l.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close while paused did not return")
	}
	if b.pauses.Load() != 2 {
		t.Fatalf("%d pauses, want 2", b.pauses.Load())
	}
}
