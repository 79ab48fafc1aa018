package gateway

import (
	"context"
	"os"
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

// startFile starts a gateway on the file at path, without its reload loop:
// the test applies reloads itself. It shuts down at cleanup.
func startFile(t *testing.T, path string) *Gateway {
	t.Helper()
	snap, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := Start(context.Background(), testutil.Logger(t).Out, snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Shutdown() })
	return gw
}

// TestReloadAnswerSaysWhatChanged: an applied reload answers with one
// line per listener and endpoint added, removed or changed.
func TestReloadAnswerSaysWhatChanged(t *testing.T) {
	a, b, c := testutil.Echo(t).Addr, testutil.Echo(t).Addr, testutil.Echo(t).Addr
	addr, extra := testutil.ListenAddr(t), testutil.ListenAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	writeFile(t, path, render(listenerSpec{name: "main", addr: addr, endpoints: []string{a, b}}))
	gw := startFile(t, path)
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

// TestReloadAnswerSaysWhichKeysChanged: an applied reload's answer has a
// line for each key that changed, at the top level and in a listener.
func TestReloadAnswerSaysWhichKeysChanged(t *testing.T) {
	echo := testutil.Echo(t)
	dir := t.TempDir()
	path, addr := filepath.Join(dir, "gw.yaml"), testutil.ListenAddr(t)
	main := listenerSpec{name: "main", addr: addr, endpoints: []string{echo.Addr}}
	writeFile(t, path, render(main))
	gw := startFile(t, path)
	main.extra = "    policy: round-robin\n"
	writeFile(t, path, strings.Replace(render(main), "log-level: debug", "log-level: info", 1))
	next, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := gw.reload(context.Background(), config.Reload{Snapshot: next, Trigger: "test"})
	want := []string{"~ log-level: debug → info", "~ listener main", "~ listener main policy: sticky-random → round-robin"}
	if got.Result != resultApplied || !slices.Equal(got.Changes, want) {
		t.Fatalf("answer %+v, want applied with %q", got, want)
	}
}

// callDiff asks the gateway behind sock what file would change, sending
// what the file holds, as the CLI does.
func callDiff(t *testing.T, sock, file string) (DiffAnswer, error) {
	t.Helper()
	content, _ := os.ReadFile(file)
	return callDiffOf(t, sock, file, content)
}

// callDiffOf asks the gateway behind sock what content, named file, would
// change.
func callDiffOf(t *testing.T, sock, file string, content []byte) (DiffAnswer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var a DiffAnswer
	err := control.NewClient(sock).Call(ctx, "diff", DiffRequest{File: file, Content: content}, &a)
	return a, err
}

// TestDiffThroughTheControlSocket: the diff call says what another file
// would change, and applies nothing; it refuses a bad file with the
// error that names the key, and a relative path; it reads the caller's
// content, never the path (a caller can't make the gateway read a file).
func TestDiffThroughTheControlSocket(t *testing.T) {
	a, b := testutil.Echo(t).Addr, testutil.Echo(t).Addr
	dir := t.TempDir()
	path, sock, addr, other := filepath.Join(dir, "gw.yaml"), filepath.Join(dir, "control.sock"), testutil.ListenAddr(t), testutil.ListenAddr(t)
	running := "control-socket: " + sock + "\n" + render(listenerSpec{name: "main", addr: addr, endpoints: []string{a}})
	h := startHarness(t, dir, path, running)

	if got, err := callDiff(t, sock, path); err != nil || got.Changes != nil {
		t.Fatalf("diff of the running file: %+v, %v; want no changes", got, err)
	}
	candidate := filepath.Join(t.TempDir(), "next.yaml")
	writeFile(t, candidate, "control-socket: "+sock+"\n"+render(listenerSpec{name: "main", addr: other, endpoints: []string{b}}))
	got, err := callDiff(t, sock, candidate)
	want := []string{"~ listener main", "~ listener main listen-addr: " + addr + " → " + other,
		"+ listener main endpoint " + b, "- listener main endpoint " + a}
	if err != nil || !slices.Equal(got.Changes, want) {
		t.Fatalf("diff: %+v, %v; want %q", got, err, want)
	}
	if st := h.gw.Stats(); st.Applied != 0 || h.gw.Current().Listeners[0].ListenAddr != addr {
		t.Fatalf("the diff applied something: %+v, listening on %s", st, h.gw.Current().Listeners[0].ListenAddr)
	}
	writeFile(t, candidate, strings.Replace(running, "dial-timeout: 1s", "dial-timeout: -1s", 1))
	if _, err := callDiff(t, sock, candidate); err == nil || !strings.Contains(err.Error(), `key "dial-timeout"`) {
		t.Fatalf("diff of a bad file: %v, want the key's error", err)
	}
	if _, err := callDiff(t, sock, "next.yaml"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("diff of a relative path: %v, want refused", err)
	}
	if got, err := callDiffOf(t, sock, path, []byte(strings.Replace(running, "dial-timeout: 1s", "dial-timeout: 2s", 1))); err != nil || !slices.Contains(got.Changes, "~ listener main dial-timeout: 1s → 2s") {
		t.Fatalf("diff of content sent for the running file's path: %+v, %v; want the content's change, not the file's", got, err)
	}
}
