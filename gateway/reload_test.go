package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
)

// harness is a gateway running on a config file in a temporary directory.
type harness struct {
	t    *testing.T
	dir  string
	path string
	gw   *Gateway
	hup  chan os.Signal
	done chan error
	// rejected is how many rejections the test has caused so far.
	rejected uint64
}

// listenerSpec is one listener of a test config file.
type listenerSpec struct {
	name, addr string
	endpoints  []string
	extra      string // more YAML keys, indented by 4
}

func render(ls ...listenerSpec) string {
	var b strings.Builder
	b.WriteString("log-level: debug\nshutdown-timeout: 2s\nretry-delay: 1h\ndial-timeout: 1s\nhealth-check: {type: none}\nlisteners:\n")
	for _, l := range ls {
		fmt.Fprintf(&b, "  - name: %s\n    listen-addr: %s\n    endpoints: [%s]\n", l.name, l.addr, strings.Join(l.endpoints, ", "))
		b.WriteString(l.extra)
	}
	return b.String()
}

// startHarness writes text to dir/gw.yaml (or to path when the file is laid
// out by the caller), starts the gateway on it and runs its reload loop.
func startHarness(t *testing.T, dir, path, text string) *harness {
	t.Helper()
	return startHarnessLog(t, dir, path, text, io.Discard)
}

// startMain starts a gateway, in a new directory, whose one listener
// "main" listens on a new free address in front of endpoints. It returns
// the harness and that address.
func startMain(t *testing.T, endpoints []string) (*harness, string) {
	t.Helper()
	dir := t.TempDir()
	addr := testutil.ListenAddr(t)
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), render(listenerSpec{name: "main", addr: addr, endpoints: endpoints}))
	return h, addr
}

// startMainWithAdmin is startMain with an admin address, also new and
// free, and extra top-level keys. It returns the listener's and the admin
// addresses.
func startMainWithAdmin(t *testing.T, extra string, endpoints ...string) (addr, adminAddr string) {
	t.Helper()
	dir := t.TempDir()
	addr, adminAddr = testutil.ListenAddr(t), testutil.ListenAddr(t)
	startHarness(t, dir, filepath.Join(dir, "gw.yaml"), withAdmin(adminAddr, extra,
		render(listenerSpec{name: "main", addr: addr, endpoints: endpoints})))
	return addr, adminAddr
}

// openWatch watches prefix through the gateway at addr and puts key: the
// watch is open once the put is seen on it.
func openWatch(t *testing.T, ctx context.Context, addr, prefix, key, value string) clientv3.WatchChan {
	t.Helper()
	cli := testutil.Client(t, addr)
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix())
	if _, err := cli.Put(ctx, key, value); err != nil {
		t.Fatal(err)
	}
	return wch
}

// startHarnessLog is startHarness with the gateway's log also written to
// logOut (besides stderr with -v).
func startHarnessLog(t *testing.T, dir, path, text string, logOut io.Writer) *harness {
	t.Helper()
	if text != "" {
		writeFile(t, path, text)
	}
	snap, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		logOut = io.MultiWriter(logOut, os.Stderr)
	}
	gw, err := Start(context.Background(), logOut, snap)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, dir: dir, path: path, gw: gw, hup: make(chan os.Signal, 1), done: make(chan error, 1)}
	go func() { h.done <- gw.Run(ctx, h.hup, config.WatchOptions{PollInterval: time.Hour}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("gateway Run: %v", err)
		}
	})
	return h
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitApplied waits until n reloads have been applied in all, and fails if
// more were applied or any was rejected that the test did not cause.
func (h *harness) waitApplied(n uint64) {
	h.t.Helper()
	testutil.WaitFor(h.t, fmt.Sprintf("reload %d to be applied", n), 10*time.Second, func() bool { return h.gw.Stats().Applied >= n })
	if st := h.gw.Stats(); st.Applied != n || st.Rejected != h.rejected {
		h.t.Fatalf("reloads: applied %d (want %d), rejected %d (want %d, last error %q)", st.Applied, n, st.Rejected, h.rejected, st.LastError)
	}
}

// waitRejected waits until n reloads have been rejected in all.
func (h *harness) waitRejected(n uint64) ReloadStats {
	h.t.Helper()
	testutil.WaitFor(h.t, fmt.Sprintf("reload %d to be rejected", n), 10*time.Second, func() bool { return h.gw.Stats().Rejected >= n })
	h.rejected = n
	st := h.gw.Stats()
	if st.Rejected != n {
		h.t.Fatalf("rejected %d reloads, want %d (last error %q)", st.Rejected, n, st.LastError)
	}
	return st
}

func (h *harness) addr(name string) string {
	h.t.Helper()
	l, ok := h.gw.Group().Listeners()[name]
	if !ok {
		h.t.Fatalf("no listener %q", name)
	}
	return l.Addr().String()
}

func (h *harness) endpoints(name string) []string {
	var out []string
	for _, ep := range h.gw.Group().Listeners()[name].Pool().Endpoints() {
		out = append(out, ep.Addr())
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// getValue reads key through addr with a new client.
func getValue(t *testing.T, addr, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := testutil.Client(t, addr).Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s through %s: %v", key, addr, err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

func put(t *testing.T, c *etcdtest.Cluster, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := testutil.Client(t, c.ClientAddrs()[0]).Put(ctx, key, value); err != nil {
		t.Fatal(err)
	}
}

// Save styles: how people and tools write a config file.
func saveInPlace(t *testing.T, path, text string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(text), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(text))); err != nil {
		t.Fatal(err)
	}
}

func saveTruncateThenWrite(t *testing.T, path, text string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Two writes, as a slow editor makes them.
	half := len(text) / 2
	if _, err := f.WriteString(text[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text[half:]); err != nil {
		t.Fatal(err)
	}
}

func saveRenameOver(t *testing.T, path, text string) {
	tmp := path + ".tmp~"
	writeFile(t, tmp, text)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func saveDeleteThenCreate(t *testing.T, path, text string) {
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, text)
}

// configMap lays out a directory the way a Kubernetes ConfigMap volume
// does: dir/gw.yaml → ..data/gw.yaml, ..data → ..<version>.
type configMap struct {
	dir     string
	version int
}

func (c *configMap) save(t *testing.T, text string) {
	t.Helper()
	c.version++
	ts := fmt.Sprintf("..2026_11_24_%d", c.version)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.dir, ts, "gw.yaml"), text)
	tmpLink := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if c.version == 1 {
		if err := os.Symlink(filepath.Join("..data", "gw.yaml"), filepath.Join(c.dir, "gw.yaml")); err != nil {
			t.Fatal(err)
		}
	} else {
		_ = os.RemoveAll(filepath.Join(c.dir, fmt.Sprintf("..2026_11_24_%d", c.version-1)))
	}
}

func TestEverySaveStyleReloadsOnce(t *testing.T) {
	a, b := testutil.Cluster(t, 1), testutil.Cluster(t, 1)
	put(t, a, "whoami", "A")
	put(t, b, "whoami", "B")
	addr := testutil.ListenAddr(t)
	toA := render(listenerSpec{name: "main", addr: addr, endpoints: a.ClientAddrs()})
	toB := render(listenerSpec{name: "main", addr: addr, endpoints: b.ClientAddrs()})

	styles := []struct {
		name string
		save func(t *testing.T, path, text string)
	}{
		{"write in place", saveInPlace},
		{"truncate then write", saveTruncateThenWrite},
		{"write a temp file and rename over", saveRenameOver},
		{"delete then create", saveDeleteThenCreate},
	}
	dir := t.TempDir()
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), toA)
	var applied uint64
	check := func(style, want string, eps []string) {
		t.Helper()
		applied++
		h.waitApplied(applied)
		// The next connection uses the new endpoints within 1 s.
		testutil.WaitFor(t, style+": the new endpoint set", time.Second, func() bool { return slices.Equal(h.endpoints("main"), sorted(eps)) })
		if got := getValue(t, addr, "whoami"); got != want {
			t.Fatalf("%s: a new connection reached cluster %q, want %q", style, got, want)
		}
	}
	if got := getValue(t, addr, "whoami"); got != "A" {
		t.Fatalf("before any reload reached %q", got)
	}
	for i, s := range styles {
		text, want, eps := toB, "B", b.ClientAddrs()
		if i%2 == 1 {
			text, want, eps = toA, "A", a.ClientAddrs()
		}
		s.save(t, h.path, text)
		check(s.name, want, eps)
	}

	// A Kubernetes ConfigMap volume: the ..data symlink is swapped.
	cmDir := t.TempDir()
	cm := &configMap{dir: cmDir}
	cm.save(t, render(listenerSpec{name: "main", addr: testutil.ListenAddr(t), endpoints: a.ClientAddrs()}))
	k := startHarness(t, cmDir, filepath.Join(cmDir, "gw.yaml"), "")
	kaddr := k.addr("main")
	cm.save(t, render(listenerSpec{name: "main", addr: kaddr, endpoints: b.ClientAddrs()}))
	k.waitApplied(1)
	testutil.WaitFor(t, "configmap: the new endpoint set", time.Second, func() bool { return slices.Equal(k.endpoints("main"), sorted(b.ClientAddrs())) })
	if got := getValue(t, kaddr, "whoami"); got != "B" {
		t.Fatalf("configmap: reached %q, want B", got)
	}
	// A save with the same content is no reload; SIGHUP re-reads but
	// changes nothing either.
	saveRenameOver(t, h.path, toA)
	h.hup <- os.Interrupt
	h.waitApplied(applied)
}

// usedEndpoint returns the endpoint address the listener's connections went to.
func (h *harness) usedEndpoint(name string) string {
	h.t.Helper()
	for _, ep := range h.gw.Group().Listeners()[name].Pool().Endpoints() {
		if ep.Stats().TotalConns > 0 {
			return ep.Addr()
		}
	}
	h.t.Fatal("no endpoint used yet")
	return ""
}

func TestWatchSurvivesTwentyReloads(t *testing.T) {
	c := testutil.Cluster(t, 3)
	h, addr := startMain(t, c.ClientAddrs())

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wch := openWatch(t, ctx, addr, "ev/", "ev/start", "x")
	used := h.usedEndpoint("main")
	var others []string
	for _, a := range c.ClientAddrs() {
		if a != used {
			others = append(others, a)
		}
	}
	accepted := h.gw.Group().Listeners()["main"].TotalConns()

	writer := testutil.Client(t, c.ClientAddrs()[0])
	const reloads = 20
	for i := range reloads {
		eps := []string{used, others[i%2]}
		saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: addr, endpoints: eps}))
		h.waitApplied(uint64(i + 1))
		if _, err := writer.Put(ctx, fmt.Sprintf("ev/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for len(seen) < reloads+1 {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || wr.Canceled {
				t.Fatalf("watch broke after %d events: closed=%v err=%v", len(seen), !ok, wr.Err())
			}
			for _, ev := range wr.Events {
				seen[string(ev.Kv.Key)] = true
			}
		case <-ctx.Done():
			t.Fatalf("watch saw %d of %d events", len(seen), reloads+1)
		}
	}
	if got := h.gw.Group().Listeners()["main"].TotalConns(); got != accepted {
		t.Fatalf("the listener accepted %d connections during the reloads: the client reconnected", got-accepted)
	}
}

func TestReloadsUnderLoadDropNothing(t *testing.T) {
	c := testutil.Cluster(t, 3)
	dir := t.TempDir()
	addr := testutil.ListenAddr(t)
	m := c.ClientAddrs()
	setA := render(listenerSpec{name: "main", addr: addr, endpoints: []string{m[0], m[1]}})
	setB := render(listenerSpec{name: "main", addr: addr, endpoints: []string{m[1], m[2]}})
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), setA)

	const clients = 16
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var clis []*clientv3.Client
	for i := range clients {
		cli := testutil.Client(t, addr)
		if _, err := cli.Put(ctx, fmt.Sprintf("load/%d", i), "0"); err != nil {
			t.Fatal(err)
		}
		clis = append(clis, cli)
	}
	accepted := h.gw.Group().Listeners()["main"].TotalConns()

	load := startPutGetLoad(ctx, clis)
	const rewrites = 50
	for i := range rewrites {
		text := setB
		if i%2 == 1 {
			text = setA
		}
		saveTruncateThenWrite(t, h.path, text)
		h.waitApplied(uint64(i + 1))
	}
	load.end()
	if n := load.errs.Load(); n != 0 {
		t.Fatalf("%d client errors during reloads, first: %v", n, *load.firstErr.Load())
	}
	if load.ops.Load() < clients {
		t.Fatalf("only %d operations ran during the reloads", load.ops.Load())
	}
	if got := h.gw.Group().Listeners()["main"].TotalConns(); got != accepted {
		t.Fatalf("%d connections were re-made during the reloads", got-accepted)
	}
}

// putGetLoad puts and gets a key of its own through each client, until
// end; a client stops at its first error.
type putGetLoad struct {
	stop      atomic.Bool
	ops, errs atomic.Int64
	firstErr  atomic.Pointer[error]
	wg        sync.WaitGroup
}

// startPutGetLoad starts the load of clis, client i on key load/i.
func startPutGetLoad(ctx context.Context, clis []*clientv3.Client) *putGetLoad {
	l := &putGetLoad{}
	for i, cli := range clis {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			key := fmt.Sprintf("load/%d", i)
			for n := 0; n < 1_000_000 && !l.stop.Load(); n++ { // bounded
				if _, err := cli.Put(ctx, key, fmt.Sprint(n)); err != nil {
					l.errs.Add(1)
					l.firstErr.CompareAndSwap(nil, &err)
					return
				}
				if _, err := cli.Get(ctx, key); err != nil {
					l.errs.Add(1)
					l.firstErr.CompareAndSwap(nil, &err)
					return
				}
				l.ops.Add(2)
			}
		}()
	}
	return l
}

// end stops the load and waits for its clients.
func (l *putGetLoad) end() {
	l.stop.Store(true)
	l.wg.Wait()
}

// badSave is a save of the configuration file that must be rejected, and
// what its error must name.
type badSave struct {
	name string
	save func()
	want []string // in the error
}

// badSaves are the bad saves of h's file, whose good one has listener
// main at addr: each would move it to the members bAddrs, one adds a
// listener on occupied, an address in use.
func badSaves(t *testing.T, h *harness, addr string, bAddrs []string, occupied string) []badSave {
	return []badSave{
		{"syntax error", func() { saveRenameOver(t, h.path, "listeners: [\n") }, []string{h.path, "syntax"}},
		{"invalid value", func() {
			saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: addr, endpoints: bAddrs, extra: "    retry-delay: -1s\n"}))
		}, []string{h.path, `listener "main"`, "retry-delay"}},
		{"unknown key", func() {
			saveRenameOver(t, h.path, strings.Replace(render(listenerSpec{name: "main", addr: addr, endpoints: bAddrs}), "endpoints:", "endpoint:", 1))
		}, []string{h.path, `listener "main"`, `"endpoint"`}},
		{"empty file", func() { saveRenameOver(t, h.path, "") }, []string{h.path, "empty"}},
		{"address that can't be bound", func() {
			saveRenameOver(t, h.path, render(
				listenerSpec{name: "main", addr: addr, endpoints: bAddrs},
				listenerSpec{name: "extra", addr: occupied, endpoints: bAddrs}))
		}, []string{h.path, `listener "extra"`, "listen-addr"}},
		{"a directory in place of the file", func() {
			_ = os.Remove(h.path)
			if err := os.Mkdir(h.path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, []string{h.path, "directory"}},
		{"file deleted", func() { _ = os.Remove(h.path) }, []string{h.path, "no such file"}},
	}
}

func TestBadReloadsAreRejectedAndTheOldConfigServes(t *testing.T) {
	a, b := testutil.Cluster(t, 1), testutil.Cluster(t, 1)
	put(t, a, "whoami", "A")
	put(t, b, "whoami", "B")
	dir := t.TempDir()
	addr := testutil.ListenAddr(t)
	good := render(listenerSpec{name: "main", addr: addr, endpoints: a.ClientAddrs()})
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), good)

	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()

	for i, tc := range badSaves(t, h, addr, b.ClientAddrs(), occupied.Addr().String()) {
		tc.save()
		st := h.waitRejected(uint64(i + 1))
		for _, w := range tc.want {
			if !strings.Contains(st.LastError, w) {
				t.Errorf("%s: error %q does not name %q", tc.name, st.LastError, w)
			}
		}
		if st.Applied != 0 {
			t.Fatalf("%s: applied", tc.name)
		}
		if !slices.Equal(h.endpoints("main"), sorted(a.ClientAddrs())) {
			t.Fatalf("%s: endpoints changed to %v", tc.name, h.endpoints("main"))
		}
		if got := getValue(t, addr, "whoami"); got != "A" {
			t.Fatalf("%s: the running config stopped serving (got %q)", tc.name, got)
		}
	}
	if _, ok := h.gw.Group().Listeners()["extra"]; ok {
		t.Fatal("the rejected listener was started")
	}
	// The next good save is applied.
	writeFile(t, h.path, render(listenerSpec{name: "main", addr: addr, endpoints: b.ClientAddrs()}))
	h.waitApplied(1)
	if got := getValue(t, addr, "whoami"); got != "B" {
		t.Fatalf("after the good save reached %q, want B", got)
	}
}

// rawConn opens a TCP connection through the gateway and proves it is
// forwarded: etcd answers an HTTP request on its client port.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !alive(c) {
		t.Fatal("a new connection through the gateway got no answer")
	}
	return c
}

// alive reports whether c still carries a request and its answer.
func alive(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /version HTTP/1.1\r\nHost: etcd\r\n\r\n"); err != nil {
		return false
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200")
}

func TestRemovedEndpointPolicies(t *testing.T) {
	a, b := testutil.Cluster(t, 1), testutil.Cluster(t, 1)
	for _, policy := range []string{"keep", "drain", "close"} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			addr := testutil.ListenAddr(t)
			extra := fmt.Sprintf("    on-endpoint-removed: %s\n    drain-timeout: 200ms\n", policy)
			h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), render(listenerSpec{name: "main", addr: addr, endpoints: a.ClientAddrs(), extra: extra}))
			c := rawConn(t, addr)
			saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: addr, endpoints: b.ClientAddrs(), extra: extra}))
			h.waitApplied(1)
			if policy == "keep" {
				if !alive(c) {
					t.Fatal("keep: the connection to the removed endpoint was closed")
				}
				return
			}
			// drain and close: the connection ends (drain after its timeout).
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("%s: read on the removed endpoint's connection: %v, want EOF", policy, err)
			}
			rawConn(t, addr) // new connections still work
		})
	}
}

func TestListenerAddRemoveRebind(t *testing.T) {
	c := testutil.Cluster(t, 1)
	eps := c.ClientAddrs()
	dir := t.TempDir()
	mainAddr, extraAddr, newMainAddr := testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), render(listenerSpec{name: "main", addr: mainAddr, endpoints: eps}))
	old := rawConn(t, mainAddr)

	// Add a listener.
	saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: mainAddr, endpoints: eps}, listenerSpec{name: "extra", addr: extraAddr, endpoints: eps}))
	h.waitApplied(1)
	rawConn(t, extraAddr)

	// Re-bind main: the new address serves, the old one refuses, and the
	// connection made on the old address keeps working.
	saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: newMainAddr, endpoints: eps}, listenerSpec{name: "extra", addr: extraAddr, endpoints: eps}))
	h.waitApplied(2)
	rawConn(t, newMainAddr)
	if c, err := net.Dial("tcp", mainAddr); err == nil {
		c.Close()
		t.Fatal("the old address still accepts")
	}
	if !alive(old) {
		t.Fatal("the connection on the old address was dropped by the re-bind")
	}

	// A re-bind to an address in use is rejected whole: nothing changes.
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()
	saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: occupied.Addr().String(), endpoints: eps}))
	st := h.waitRejected(1)
	if !strings.Contains(st.LastError, `listener "main"`) || !strings.Contains(st.LastError, "listen-addr") {
		t.Fatalf("rejection %q does not name the listener and key", st.LastError)
	}
	rawConn(t, newMainAddr)
	rawConn(t, extraAddr) // the listener that reload would have removed is still there

	// Remove a listener.
	saveRenameOver(t, h.path, render(listenerSpec{name: "main", addr: newMainAddr, endpoints: eps}))
	h.waitApplied(3)
	testutil.WaitFor(t, "the removed listener to stop accepting", 5*time.Second, func() bool {
		c, err := net.Dial("tcp", extraAddr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}
