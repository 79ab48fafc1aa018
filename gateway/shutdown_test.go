package gateway

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
)

func startEcho(t *testing.T, timeout time.Duration) (*Gateway, string) {
	t.Helper()
	addr := testutil.ListenAddr(t)
	snap := &config.Snapshot{LogLevel: "info", LogFormat: "text", ShutdownTimeout: timeout, Listeners: []config.Listener{{
		Name: "main", ListenAddr: addr, Endpoints: []string{testutil.Echo(t).Addr},
		RetryDelay: time.Hour, DialTimeout: time.Second, OnEndpointRemoved: config.RemovedKeep, DrainTimeout: time.Second,
	}}}
	gw, err := Start(context.Background(), io.Discard, snap)
	if err != nil {
		t.Fatal(err)
	}
	return gw, addr
}

func TestShutdownDrainsOpenConnections(t *testing.T) {
	gw, addr := startEcho(t, time.Minute)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !testutil.Echoes(c) {
		t.Fatal("no echo before shutdown")
	}
	done := make(chan error, 1)
	go func() { done <- gw.Shutdown() }()

	// New connections are refused at once; the open one keeps working.
	testutil.WaitFor(t, "the listener to stop accepting", 5*time.Second, func() bool {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	if !testutil.Echoes(c) {
		t.Fatal("the open connection stopped working during the drain")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a connection was open", err)
	default:
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last connection closed")
	}
}

func TestShutdownTimeoutClosesTheRest(t *testing.T) {
	gw, addr := startEcho(t, 100*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !testutil.Echoes(c) {
		t.Fatal("no echo")
	}
	if err := gw.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the shutdown timeout: %v, want EOF", err)
	}
}

func TestLogLevelAndFormatReloadAtOnce(t *testing.T) {
	dir := t.TempDir()
	addr := testutil.ListenAddr(t)
	backend := testutil.Echo(t).Addr
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), render(listenerSpec{name: "main", addr: addr, endpoints: []string{backend}}))
	if h.gw.Log().GetLevel() != logrus.DebugLevel {
		t.Fatalf("level %s at start, want debug", h.gw.Log().GetLevel())
	}
	text := "log-level: warn\nlog-format: json\n" + render(listenerSpec{name: "main", addr: addr, endpoints: []string{backend}})[len("log-level: debug\n"):]
	saveRenameOver(t, h.path, text)
	h.waitApplied(1)
	if h.gw.Log().GetLevel() != logrus.WarnLevel {
		t.Fatalf("level %s after reload, want warn", h.gw.Log().GetLevel())
	}
	if _, ok := h.gw.Log().Formatter.(*logrus.JSONFormatter); !ok {
		t.Fatalf("formatter %T after reload, want JSON", h.gw.Log().Formatter)
	}
}
