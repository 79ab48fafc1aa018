package gateway

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/control"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// callReload asks the gateway behind sock to reload.
func callReload(t *testing.T, sock string, req ReloadRequest) (ReloadAnswer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var a ReloadAnswer
	err := control.NewClient(sock).Call(ctx, "reload", req, &a)
	return a, err
}

// TestReloadThroughTheControlSocket: a reload asked on the control socket
// answers unchanged for the running file, rejected with the error that
// names the file, listener and key for a bad one (and the listener serves
// on), and is refused for another file.
func TestReloadThroughTheControlSocket(t *testing.T) {
	echo := testutil.Echo(t)
	dir := t.TempDir()
	path, sock, addr := filepath.Join(dir, "gw.yaml"), filepath.Join(dir, "control.sock"), testutil.ListenAddr(t)
	good := "control-socket: " + sock + "\n" + render(listenerSpec{name: "main", addr: addr, endpoints: []string{echo.Addr}})
	startHarness(t, dir, path, good)

	if a, err := callReload(t, sock, ReloadRequest{File: path}); err != nil || a.Result != resultUnchanged {
		t.Fatalf("reload of the running file: %+v, %v; want unchanged", a, err)
	}
	writeFile(t, path, strings.Replace(good, "endpoints: [", "dial-timeout: -1s\n    endpoints: [", 1))
	a, err := callReload(t, sock, ReloadRequest{})
	if err != nil || !a.Rejected() {
		t.Fatalf("reload of a bad file: %+v, %v; want rejected", a, err)
	}
	for _, want := range []string{path, `listener "main"`, `key "dial-timeout"`} {
		if !strings.Contains(a.Error, want) {
			t.Errorf("the rejection %q does not name %s", a.Error, want)
		}
	}
	if c := testutil.Dial(t, addr); !testutil.Echoes(c) {
		t.Fatal("the listener stopped serving after a rejected reload")
	}
	if _, err := callReload(t, sock, ReloadRequest{File: filepath.Join(dir, "other.yaml")}); err == nil || !strings.Contains(err.Error(), "not "+filepath.Join(dir, "other.yaml")) {
		t.Fatalf("reload of another file: %v, want refused", err)
	}
}

// TestReloadAnswerSaysWhatChanged: an applied reload answers with one
// line per listener and endpoint added, removed or changed.
func TestReloadAnswerSaysWhatChanged(t *testing.T) {
	a, b, c := testutil.Echo(t).Addr, testutil.Echo(t).Addr, testutil.Echo(t).Addr
	addr, extra := testutil.ListenAddr(t), testutil.ListenAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	writeFile(t, path, render(listenerSpec{name: "main", addr: addr, endpoints: []string{a, b}}))
	snap, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := Start(context.Background(), testutil.Logger(t).Out, snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Shutdown() })
	writeFile(t, path, render(listenerSpec{name: "main", addr: addr, endpoints: []string{a, c}}, listenerSpec{name: "extra", addr: extra, endpoints: []string{a}}))
	next, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := gw.reload(context.Background(), config.Reload{Snapshot: next, Trigger: "test"})
	want := []string{"+ listener extra", "~ listener main", "+ listener main endpoint " + c, "- listener main endpoint " + b}
	if got.Result != resultApplied || !slices.Equal(got.Changes, want) {
		t.Fatalf("answer %+v, want applied with %q", got, want)
	}
}
