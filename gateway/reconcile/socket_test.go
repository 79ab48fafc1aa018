package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	logtest "github.com/sirupsen/logrus/hooks/test"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// unixListenerConfig returns a listener on the unix socket path.
func unixListenerConfig(name, path string, endpoints []string) config.Listener {
	lc := listenerConfig(name, endpoints)
	lc.ListenAddr = "unix://" + path
	lc.SocketMode = config.DefaultSocketMode
	return lc
}

// socketMode returns the permission bits of the socket file path, and
// fails unless it is a socket.
func socketMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	return fi.Mode().Perm()
}

// gone reports whether nothing is at path.
func gone(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, os.ErrNotExist)
}

// TestEtcdThroughUnixSocket runs put, get, watch and lease through a
// unix socket listener, then reloads that add, change and remove unix
// listeners while the watch stays open.
func TestEtcdThroughUnixSocket(t *testing.T) {
	t.Parallel()
	c := testutil.Cluster(t, 1)
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	la := unixListenerConfig("a", pa, c.ClientAddrs())
	g := startGroup(t, la)
	if m := socketMode(t, pa); m != 0o660 {
		t.Fatalf("socket mode %v, want 0660", m)
	}
	if addr := gatewayAddr(t, g, "a"); addr != pa {
		t.Fatalf("listener address %q, want %q", addr, pa)
	}
	cli := testutil.Client(t, "unix://"+pa)
	ctx := ctxTimeout(t, 30*time.Second)

	w := &watchedGroup{ctx: ctx, g: g, cli: cli, wch: cli.Watch(ctx, "w/", clientv3.WithPrefix())}
	putThenGet(t, ctx, cli, "foo", "bar")
	leaseThrough(t, ctx, cli)
	w.sees(t, "start")
	first := g.Listeners()["a"]

	apply := func(step string, ls ...config.Listener) { t.Helper(); w.apply(t, step, ls...) }
	lb := unixListenerConfig("b", pb, c.ClientAddrs())
	apply("add b", la, lb)
	if resp, err := testutil.Client(t, "unix://"+pb).Get(ctx, "foo"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get through b: %v %v", resp, err)
	}
	la.SocketMode = "0600"
	apply("change a's mode", la, lb)
	if m := socketMode(t, pa); m != 0o600 {
		t.Fatalf("socket mode %v after the reload, want 0600", m)
	}
	if g.Listeners()["a"] != first {
		t.Fatal("a mode change re-bound the listener")
	}
	apply("remove b", la)
	testutil.WaitFor(t, "b's socket file to be removed", 5*time.Second, func() bool { return gone(pb) })
	pa2 := filepath.Join(dir, "a2.sock")
	la.ListenAddr = "unix://" + pa2
	apply("move a", la)
	testutil.WaitFor(t, "a's old socket file to be removed", 5*time.Second, func() bool { return gone(pa) })
	if resp, err := testutil.Client(t, "unix://"+pa2).Get(ctx, "foo"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get through a's new socket: %v %v", resp, err)
	}
	// The clients are still open: shutdown closes them after its timeout.
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_ = g.Shutdown(sctx)
	if !gone(pa2) {
		t.Fatal("the socket file is left after shutdown")
	}
}

// leaseThrough grants, uses, keeps alive and revokes a lease through cli.
func leaseThrough(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	lease, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatalf("lease grant: %v", err)
	}
	if _, err := cli.Put(ctx, "leased", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatalf("put with lease: %v", err)
	}
	if _, err := cli.KeepAliveOnce(ctx, lease.ID); err != nil {
		t.Fatalf("lease keepalive: %v", err)
	}
	if _, err := cli.Revoke(ctx, lease.ID); err != nil {
		t.Fatalf("lease revoke: %v", err)
	}
	if resp, err := cli.Get(ctx, "leased"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("key of a revoked lease: %v %v", resp, err)
	}
}

// watchedGroup is a group whose client keeps a watch open on "w/"
// through its reloads.
type watchedGroup struct {
	ctx context.Context
	g   *Group
	cli *clientv3.Client
	wch clientv3.WatchChan
	n   int // the keys put so far
}

// sees puts the next key and checks that the watch sees it.
func (w *watchedGroup) sees(t *testing.T, step string) {
	t.Helper()
	w.n++
	key := fmt.Sprintf("w/%d", w.n)
	if _, err := w.cli.Put(w.ctx, key, step); err != nil {
		t.Fatalf("%s: put: %v", step, err)
	}
	select {
	case wr := <-w.wch:
		if err := wr.Err(); err != nil || len(wr.Events) != 1 || string(wr.Events[0].Kv.Key) != key {
			t.Fatalf("%s: watch got %v, %v", step, wr.Events, err)
		}
	case <-w.ctx.Done():
		t.Fatalf("%s: the watch saw nothing", step)
	}
}

// apply applies a snapshot of listeners ls, then checks the watch still
// sees.
func (w *watchedGroup) apply(t *testing.T, step string, ls ...config.Listener) {
	t.Helper()
	if _, err := w.g.Apply(w.ctx, &config.Snapshot{ShutdownTimeout: time.Second, Listeners: ls}); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	w.sees(t, step)
}

// TestUnixSocketInTheWay checks that a socket left by a gateway that is
// gone is replaced, and that a live socket or another file is an error
// naming the path.
func TestUnixSocketInTheWay(t *testing.T) {
	t.Parallel()
	echo := testutil.Serve(t, func(c net.Conn) { _, _ = io.Copy(c, c); _ = c.Close() })
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = ln.Close()
	if gone(stale) {
		t.Fatal("test setup: no stale socket")
	}
	startGroup(t, unixListenerConfig("a", stale, []string{echo.Addr}))
	echoes(t, stale)

	g := newGroup(t, testutil.Logger(t))
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	_, err = g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second,
		Listeners: []config.Listener{unixListenerConfig("b", stale, []string{echo.Addr})}})
	if err == nil || !strings.Contains(err.Error(), stale) || !strings.Contains(err.Error(), "another process listens on it") ||
		!strings.Contains(err.Error(), `listener "b"`) || !strings.Contains(err.Error(), `key "listen-addr"`) {
		t.Fatalf("binding a live socket: got %v", err)
	}
	echoes(t, stale) // the live one is left alone

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second,
		Listeners: []config.Listener{unixListenerConfig("b", file, []string{echo.Addr})}})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("binding over a file: got %v", err)
	}
}

// echoes checks that a connection to the unix socket path gets its bytes
// back.
func echoes(t *testing.T, path string) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through %s: %q, %v", path, buf, err)
	}
}

// needRoot skips a test that changes file owners or runs processes as
// other users.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs processes as other users and changes file owners")
	}
}

// TestUnixSocketOwner checks that the socket file gets the configured
// owner and group, and that a reload changes them without re-binding.
func TestUnixSocketOwner(t *testing.T) {
	t.Parallel()
	needRoot(t)
	echo := testutil.Serve(t, func(c net.Conn) { _ = c.Close() })
	path := filepath.Join(t.TempDir(), "o.sock")
	lc := unixListenerConfig("a", path, []string{echo.Addr})
	lc.SocketOwner, lc.SocketGroup = "65534", "65533"
	g := startGroup(t, lc)
	owner := func() (uint32, uint32) {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid
	}
	if uid, gid := owner(); uid != 65534 || gid != 65533 {
		t.Fatalf("socket owned by %d:%d, want 65534:65533", uid, gid)
	}
	lc.SocketOwner, lc.SocketGroup = "root", "0"
	if _, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, Listeners: []config.Listener{lc}}); err != nil {
		t.Fatal(err)
	}
	if uid, gid := owner(); uid != 0 || gid != 0 {
		t.Fatalf("socket owned by %d:%d after the reload, want 0:0", uid, gid)
	}
}

// Environment of the dialling child of TestAllowLists: the test binary
// re-executed as TestPeerDialHelper, which takes the credentials, dials
// the socket and exits 0 when it is served, 3 when it is closed.
const (
	peerDialEnv = "ETCD_GATEWAY_TEST_PEER_DIAL"
	peerUIDEnv  = "ETCD_GATEWAY_TEST_PEER_UID"
	peerGIDEnv  = "ETCD_GATEWAY_TEST_PEER_GID"
	exitDenied  = 3
)

// TestPeerDialHelper is the dialling child of TestAllowLists; it does
// nothing in a normal run.
func TestPeerDialHelper(t *testing.T) {
	path := os.Getenv(peerDialEnv)
	if path == "" {
		t.Skip("the child of TestAllowLists")
	}
	uid, _ := strconv.Atoi(os.Getenv(peerUIDEnv))
	gid, _ := strconv.Atoi(os.Getenv(peerGIDEnv))
	// Groups first: after setuid the process may not change them.
	if err := syscall.Setgroups(nil); err != nil {
		os.Exit(2)
	}
	if err := syscall.Setgid(gid); err != nil {
		os.Exit(2)
	}
	if err := syscall.Setuid(uid); err != nil {
		os.Exit(2)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4)
	if _, err := c.Write([]byte("ping")); err == nil {
		_, _ = io.ReadFull(c, buf) // EOF when the gateway closed it
	}
	if string(buf) == "ping" {
		os.Exit(0)
	}
	os.Exit(exitDenied)
}

// dialAs runs a child that dials path as uid and gid, and reports whether
// it was served.
func dialAs(t *testing.T, path string, uid, gid int) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeerDialHelper$")
	cmd.Env = append(os.Environ(), peerDialEnv+"="+path, fmt.Sprintf("%s=%d", peerUIDEnv, uid), fmt.Sprintf("%s=%d", peerGIDEnv, gid))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit) && exit.ExitCode() == exitDenied:
		return false
	}
	t.Fatalf("dialling child as %d:%d: %v\n%s", uid, gid, err, out)
	return false
}

// TestAllowLists checks that clients of other users are served or refused
// as allowed-uids and allowed-gids say, and counted when refused.
func TestAllowLists(t *testing.T) {
	t.Parallel()
	needRoot(t)
	echo := testutil.Serve(t, func(c net.Conn) { _, _ = io.Copy(c, c); _ = c.Close() })
	dir, err := os.MkdirTemp("", "gw-peers")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// Other users reach the socket, and its mode lets everyone connect:
	// only the allow-lists decide.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	byUID := unixListenerConfig("by-uid", filepath.Join(dir, "uid.sock"), []string{echo.Addr})
	byUID.SocketMode, byUID.AllowedUIDs = "0666", []string{"0", "65534"}
	byGID := unixListenerConfig("by-gid", filepath.Join(dir, "gid.sock"), []string{echo.Addr})
	byGID.SocketMode, byGID.AllowedGIDs = "0666", []string{"65533"}
	g := startGroup(t, byUID, byGID)

	cases := []struct {
		l        config.Listener
		uid, gid int
		served   bool
	}{
		{byUID, 65534, 65534, true},
		{byUID, 65532, 65534, false},
		{byUID, 65532, 65533, false}, // the gid list is by-gid's
		{byGID, 65532, 65533, true},
		{byGID, 65533, 65532, false},
		{byGID, 0, 0, false}, // root too
	}
	denied := map[string]uint64{}
	for _, c := range cases {
		_, path := config.SplitListenAddr(c.l.ListenAddr)
		if got := dialAs(t, path, c.uid, c.gid); got != c.served {
			t.Errorf("%s: a client as %d:%d served: %v, want %v", c.l.Name, c.uid, c.gid, got, c.served)
		}
		if !c.served {
			denied[c.l.Name]++
		}
	}
	st := g.Status()
	for _, ls := range st {
		if ls.Counters.Denied != denied[ls.Config.Name] {
			t.Errorf("%s: %d denied connections counted, want %d", ls.Config.Name, ls.Counters.Denied, denied[ls.Config.Name])
		}
	}
	_, path := config.SplitListenAddr(byUID.ListenAddr)
	echoes(t, path) // root, in allowed-uids

	// A reload changes who is let in, on the same socket.
	byUID.AllowedUIDs = []string{"0"}
	if _, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, Listeners: []config.Listener{byUID, byGID}}); err != nil {
		t.Fatal(err)
	}
	if dialAs(t, path, 65534, 65534) {
		t.Error("a user removed from allowed-uids by a reload is still served")
	}
}

// TestIdentityLeakWarnedAtStart checks that starting a listener that lends
// the gateway's client certificate to every local user logs the warning,
// and that a reload closing it to a group does not.
func TestIdentityLeakWarnedAtStart(t *testing.T) {
	t.Parallel()
	e := newTLSEnv(t, "leak")
	log, hook := logtest.NewNullLogger()
	g := newGroup(t, log)
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	lc := listenerConfig("main", []string{testutil.RefusingAddr(t)})
	lc.UpstreamTLS = e.upstreamTLS()
	warned := func() int {
		n := 0
		for _, entry := range hook.AllEntries() {
			if strings.Contains(entry.Message, "hands the gateway's etcd client certificate") {
				n++
			}
		}
		return n
	}
	if _, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, Listeners: []config.Listener{lc}}); err != nil {
		t.Fatal(err)
	}
	if warned() != 1 {
		t.Fatalf("%d warnings for a TCP listener with a client certificate, want 1", warned())
	}
	lc.ListenAddr, lc.SocketMode = "unix://"+filepath.Join(t.TempDir(), "gw.sock"), "0660"
	if _, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, Listeners: []config.Listener{lc}}); err != nil {
		t.Fatal(err)
	}
	if warned() != 1 {
		t.Fatalf("warned of a unix socket with mode 0660")
	}
}

// TestUnknownSocketUser checks that a name this host does not know fails
// the apply, naming the listener and the key, and binds nothing.
func TestUnknownSocketUser(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "u.sock")
	for _, lc := range []config.Listener{
		func() config.Listener {
			lc := unixListenerConfig("a", path, []string{testutil.RefusingAddr(t)})
			lc.SocketOwner = "no-such-user-here"
			return lc
		}(),
		func() config.Listener {
			lc := unixListenerConfig("a", path, []string{testutil.RefusingAddr(t)})
			lc.AllowedGIDs = []string{"no-such-group-here"}
			return lc
		}(),
	} {
		g := newGroup(t, testutil.Logger(t))
		_, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, Listeners: []config.Listener{lc}})
		if err == nil || !strings.Contains(err.Error(), `listener "a": key "`) || !strings.Contains(err.Error(), "on this host") {
			t.Errorf("got %v, want an error naming the listener, the key and the name", err)
		}
		if !gone(path) {
			t.Error("the socket file is left after a failed apply")
		}
		_ = g.Shutdown(context.Background())
	}
}

// TestUnixClientHalfCloseAndLimits checks that a unix socket client is
// forwarded as a TCP one is: its half-close reaches the member, which
// still answers; its bytes are counted; max-connections turns the next
// client away.
func TestUnixClientHalfCloseAndLimits(t *testing.T) {
	t.Parallel()
	// The member reads the whole request, up to the client's half-close,
	// then answers it back and closes.
	member := testutil.Serve(t, func(c net.Conn) {
		defer c.Close()
		req, err := io.ReadAll(c)
		if err == nil {
			_, _ = c.Write(req)
		}
	})
	path := filepath.Join(t.TempDir(), "h.sock")
	lc := unixListenerConfig("a", path, []string{member.Addr})
	lc.MaxConnections = 1
	g := startGroup(t, lc)

	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	testutil.WaitFor(t, "the client to be tracked", 5*time.Second, func() bool { return g.Listeners()["a"].OpenConns() == 1 })
	// A second client is past max-connections: closed at once.
	extra, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_ = extra.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a client past max-connections: read %v, want EOF", err)
	}
	_ = extra.Close()
	if _, err := c.Write([]byte("half-closed")); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "half-closed" {
		t.Fatalf("answer after the half-close: %q, %v", got, err)
	}
	testutil.WaitFor(t, "the counters", 5*time.Second, func() bool {
		ct := g.Listeners()["a"].Counters()
		return ct.BytesToUpstream == 11 && ct.BytesToClient == 11 && ct.Rejected == 1 && ct.Accepted == 1
	})
}
