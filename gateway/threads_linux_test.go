package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// TestListenersShareTheForwardersThreads: the forwarder's event loops,
// each on an OS thread of its own, are the process's, not a listener's: a
// gateway with six listeners runs no more loop threads than one with one
// (one more allowed). The threads counted are those of the process
// (/proc/self/task) that wait in an epoll instance the gateway opened:
// the loops' (Go's own threads come and go as the runtime likes, and
// never exit, which makes the process's total a noisy count).
func TestListenersShareTheForwardersThreads(t *testing.T) {
	one := loopThreads(t, 1)
	six := loopThreads(t, 6)
	if six > one+1 {
		t.Fatalf("%d loop threads with 6 listeners, %d with 1: the listeners don't share the forwarder's loops", six, one)
	}
}

// loopThreads starts a gateway with n listeners, has each forward a round
// trip, counts the threads waiting in the epoll instances the gateway
// opened once each has one, and shuts the gateway down.
func loopThreads(t *testing.T, n int) int {
	t.Helper()
	echo := testutil.Echo(t).Addr // before: Go's own epoll instance is open
	snap := &config.Snapshot{LogLevel: "info", LogFormat: "text", ShutdownTimeout: time.Second}
	for i := range n {
		snap.Listeners = append(snap.Listeners, config.Listener{
			Name: fmt.Sprintf("l%d", i), ListenAddr: testutil.ListenAddr(t), Endpoints: []string{echo},
			RetryDelay: time.Hour, DialTimeout: time.Second, OnEndpointRemoved: config.RemovedKeep, DrainTimeout: time.Second,
		})
	}
	before := epollFDs(t)
	gw, err := Start(context.Background(), io.Discard, snap)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = gw.Shutdown() }()
	for _, lc := range snap.Listeners {
		c := testutil.Dial(t, lc.ListenAddr)
		if err := testutil.RoundTrip(c, "ping"); err != nil {
			t.Fatalf("listener %s: %v", lc.Name, err)
		}
		_ = c.Close()
	}
	opened := slices.DeleteFunc(epollFDs(t), func(fd int) bool { return slices.Contains(before, fd) })
	var waiting int
	testutil.WaitFor(t, "a thread waiting in each epoll instance the gateway opened", 10*time.Second, func() bool {
		waiting = threadsWaitingIn(t, opened)
		return waiting == len(opened)
	})
	return waiting
}

// epollFDs are the process's epoll descriptors.
func epollFDs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var fds []int
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "anon_inode:[eventpoll]" {
			fd, _ := strconv.Atoi(e.Name())
			fds = append(fds, fd)
		}
	}
	return fds
}

// threadsWaitingIn counts the process's threads blocked in a system call
// whose first argument is one of epfds: epoll_wait on one of them.
func threadsWaitingIn(t *testing.T, epfds []int) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip("no /proc/self/task:", err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if errors.Is(err, fs.ErrPermission) {
			t.Skip("can't read a thread's system call:", err)
		}
		if err != nil {
			continue // the thread exited meanwhile
		}
		// "nr arg0 arg1 ...", or "running" for a thread not in one.
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		if arg0, err := strconv.ParseInt(strings.TrimPrefix(f[1], "0x"), 16, 64); err == nil && slices.Contains(epfds, int(arg0)) {
			n++
		}
	}
	return n
}
