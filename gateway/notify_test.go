package gateway

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"golang.org/x/sys/unix"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as systemd reads
// MONOTONIC_USEC.
func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// notifySocket listens where NOTIFY_SOCKET points, as systemd does, and
// returns a function that reads the next message.
func notifySocket(t *testing.T) func() map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	buf := make([]byte, 4096)
	return func() map[string]string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		msg := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("malformed sd_notify line %q in %q", line, buf[:n])
			}
			msg[k] = v
		}
		return msg
	}
}

func TestSdNotifyReadyReloadingStopping(t *testing.T) {
	next := notifySocket(t)
	begin := monotonicUsec(t)
	backend := testutil.Echo(t).Addr
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	addr := testutil.ListenAddr(t)
	writeFile(t, path, render(listenerSpec{name: "main", addr: addr, endpoints: []string{backend}}))
	snap, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw, hup, stop := runGateway(t, snap, config.WatchOptions{PollInterval: time.Hour})

	if m := next(); m["READY"] != "1" {
		t.Fatalf("first message %v, want READY=1", m)
	}
	// Each reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
	reload := func(what string) map[string]string {
		t.Helper()
		m := next()
		if m["RELOADING"] != "1" {
			t.Fatalf("%s: message %v, want RELOADING=1", what, m)
		}
		usec, err := strconv.ParseInt(m["MONOTONIC_USEC"], 10, 64)
		if err != nil || usec < begin || usec > monotonicUsec(t) {
			t.Fatalf("%s: MONOTONIC_USEC=%q is not the monotonic time of the reload", what, m["MONOTONIC_USEC"])
		}
		m = next()
		if m["READY"] != "1" {
			t.Fatalf("%s: message %v, want READY=1", what, m)
		}
		return m
	}
	saveRenameOver(t, path, render(listenerSpec{name: "main", addr: addr, endpoints: []string{backend}, extra: "    retry-delay: 5s\n"}))
	reload("a changed file")
	if gw.Stats().Applied != 1 {
		t.Fatalf("applied %d reloads, want 1", gw.Stats().Applied)
	}
	// systemctl reload sends SIGHUP, even when nothing changed, and waits
	// for READY=1.
	hup <- syscall.SIGHUP
	reload("SIGHUP without a change")
	saveRenameOver(t, path, "listeners: [\n")
	if m := reload("a rejected file"); !strings.Contains(m["STATUS"], "rejected") {
		t.Fatalf("READY after a rejected reload has STATUS=%q, want the rejection", m["STATUS"])
	}

	stopped := stop()
	if m := next(); m["STOPPING"] != "1" {
		t.Fatalf("message at shutdown %v, want STOPPING=1", m)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestSdNotifyOnSIGHUPWithoutFile: with etcd's flags there is nothing to
// reload, but systemctl reload still gets its RELOADING=1 and READY=1.
func TestSdNotifyOnSIGHUPWithoutFile(t *testing.T) {
	next := notifySocket(t)
	f := config.DefaultFlags()
	f.ListenAddr, f.Endpoints = testutil.ListenAddr(t), []string{testutil.Echo(t).Addr}
	snap, err := config.FromFlags(f)
	if err != nil {
		t.Fatal(err)
	}
	_, hup, stop := runGateway(t, snap, config.WatchOptions{})
	var stopped <-chan error
	want := []string{"READY", "RELOADING", "READY", "STOPPING"}
	for i, key := range want {
		switch i {
		case 1:
			hup <- syscall.SIGHUP
		case 3:
			stopped = stop()
		}
		if m := next(); m[key] != "1" {
			t.Fatalf("message %d: %v, want %s=1", i, m, key)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// runGateway starts a gateway on snap and runs its reload loop with opts.
// stop ends the loop; the channel it returns gets Run's error.
func runGateway(t *testing.T, snap *config.Snapshot, opts config.WatchOptions) (gw *Gateway, hup chan os.Signal, stop func() <-chan error) {
	t.Helper()
	gw, err := Start(context.Background(), io.Discard, snap)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hup = make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx, hup, opts) }()
	return gw, hup, func() <-chan error {
		cancel()
		return done
	}
}
