package listener

import (
	"fmt"
	"runtime"
	"strings"
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
	if running, _ := workerGoroutines(); !got[a] || !got[b] || running != 2 {
		t.Fatalf("handled a=%v b=%v on %d goroutines, want both on 2", got[a], got[b], running)
	}
	release <- struct{}{}
	release <- struct{}{}
	testutil.WaitFor(t, "both workers idle", 5*time.Second, func() bool { _, idle := workerGoroutines(); return idle == 2 })

	// The next connection goes to an idle worker: no new goroutine.
	c := &proxyConn{}
	w.run(c)
	if pc := <-handled; pc != c {
		t.Fatal("handled the wrong connection")
	}
	if n, _ := workerGoroutines(); n != 2 {
		t.Errorf("%d worker goroutines after a connection with two idle, want 2", n)
	}
	release <- struct{}{}

	close(stop)
	testutil.WaitFor(t, "workers to exit after stop", 5*time.Second, func() bool { n, _ := workerGoroutines(); return n == 0 })
}

// workerGoroutines counts, from the goroutines' stacks, the worker
// goroutines alive that the calling goroutine started (through run), and
// of them those waiting for work: the workers keep no count of their own.
func workerGoroutines() (running, idle int) {
	createdBy := fmt.Sprintf("listener.(*workers).run in goroutine %d\n", goroutineID())
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if !strings.Contains(g, createdBy) {
			continue
		}
		running++
		if header, _, _ := strings.Cut(g, "\n"); strings.Contains(header, " [select") {
			idle++
		}
	}
	return running, idle
}

// goroutineID returns the calling goroutine's number, as stacks show it.
func goroutineID() int {
	var id int
	buf := make([]byte, 64)
	_, _ = fmt.Sscanf(string(buf[:runtime.Stack(buf, false)]), "goroutine %d ", &id)
	return id
}

// allStacks returns the stacks of every goroutine, as a panic prints them.
func allStacks() string {
	buf := make([]byte, 1<<16)
	for {
		if n := runtime.Stack(buf, true); n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
