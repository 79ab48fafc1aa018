package listener

import (
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

func TestWorkersReuseIdleGoroutinesAndStop(t *testing.T) {
	handled := make(chan *proxyConn)
	release := make(chan struct{})
	stop := make(chan struct{})
	w := newWorkers(func(pc *proxyConn) {
		handled <- pc
		<-release
	}, stop)

	// Two connections at once need two goroutines.
	a, b := &proxyConn{}, &proxyConn{}
	w.run(a)
	w.run(b)
	got := map[*proxyConn]bool{<-handled: true, <-handled: true}
	if !got[a] || !got[b] || w.running.Load() != 2 {
		t.Fatalf("handled a=%v b=%v on %d goroutines, want both on 2", got[a], got[b], w.running.Load())
	}
	release <- struct{}{}
	release <- struct{}{}
	testutil.WaitFor(t, "both workers idle", 5*time.Second, func() bool { return w.idle.Load() == 2 })

	// The next connection goes to an idle worker: no new goroutine.
	c := &proxyConn{}
	w.run(c)
	if pc := <-handled; pc != c {
		t.Fatal("handled the wrong connection")
	}
	if n := w.running.Load(); n != 2 {
		t.Errorf("%d worker goroutines after a connection with two idle, want 2", n)
	}
	release <- struct{}{}

	close(stop)
	testutil.WaitFor(t, "workers to exit after stop", 5*time.Second, func() bool { return w.running.Load() == 0 })
}
