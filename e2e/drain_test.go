//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// drainGateway is a child gateway with a control socket and an admin
// server, whose one listener "etcd" forwards round-robin to endpoints.
type drainGateway struct {
	*child
	path, addr, admin, sock string
}

// drainConfig is the config file's text for endpoints, with extra keys
// for the listener.
func (g *drainGateway) config(endpoints []string, extra string) string {
	return fmt.Sprintf(`log-level: info
log-format: json
shutdown-timeout: 2s
control-socket: %s
admin-addr: %s
upgrade-socket: %s
health-check: {type: none}
listeners:
  - name: etcd
    listen-addr: %s
    policy: round-robin
    endpoints: [%s]
%s`, g.sock, g.admin, filepath.Join(filepath.Dir(g.sock), "upgrade.sock"), g.addr, strings.Join(endpoints, ", "), extra)
}

// write writes the config file for endpoints.
func (g *drainGateway) write(t *testing.T, endpoints []string, extra string) {
	t.Helper()
	if err := os.WriteFile(g.path, []byte(g.config(endpoints, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startDrainGateway starts a child gateway in front of endpoints.
func startDrainGateway(t *testing.T, endpoints ...string) *drainGateway {
	t.Helper()
	dir := t.TempDir()
	g := &drainGateway{path: filepath.Join(dir, "gw.yaml"), addr: testutil.ListenAddr(t), admin: testutil.ListenAddr(t), sock: filepath.Join(dir, "control.sock")}
	g.write(t, endpoints, "")
	g.child = startChild(t, g.path, g.addr, 0)
	return g
}

// endpointState is what the tests read of an endpoint in /status.
type endpointState struct {
	Address string  `json:"address"`
	State   string  `json:"state"`
	Drained bool    `json:"drained"`
	Open    int64   `json:"open_connections"`
	Total   uint64  `json:"total_connections"`
	Share   float64 `json:"share"`
	// SlowStart is set while the endpoint's slow start runs.
	SlowStart any `json:"slow_start"`
	Moves     struct {
		Drain     uint64 `json:"drain"`
		Rebalance uint64 `json:"rebalance"`
	} `json:"moves"`
}

// endpoints returns the listener's endpoints from /status, by address.
func (g *drainGateway) endpoints(t *testing.T) map[string]endpointState {
	t.Helper()
	return statusEndpoints(t, g.admin)
}

// statusEndpoints returns the endpoints of the one listener of the
// gateway whose admin server is at admin, from /status, by address.
func statusEndpoints(t *testing.T, admin string) map[string]endpointState {
	t.Helper()
	_, body := testutil.Get(t, admin, "/status")
	var st struct {
		Listeners []struct {
			Endpoints []endpointState `json:"endpoints"`
		} `json:"listeners"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Listeners) != 1 {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	out := map[string]endpointState{}
	for _, ep := range st.Listeners[0].Endpoints {
		out[ep.Address] = ep
	}
	return out
}

// drained returns the drained endpoints' addresses.
func (g *drainGateway) drained(t *testing.T) []string {
	t.Helper()
	var out []string
	for addr, ep := range g.endpoints(t) {
		if ep.Drained {
			out = append(out, addr)
		}
	}
	return out
}

// pacedClients are etcd clients, each putting and getting its own key at
// its own pace, with pauses in which nothing of theirs is in flight.
type pacedClients struct {
	ops, errs atomic.Int64
	firstErr  atomic.Pointer[error]
	stop      chan struct{}
	wg        sync.WaitGroup
}

// startPacedClients starts n clients of addr, each doing a put and a get
// every pace.
func startPacedClients(t *testing.T, n int, addr string, pace time.Duration) *pacedClients {
	t.Helper()
	p := &pacedClients{stop: make(chan struct{})}
	for i := range n {
		cli := testutil.Client(t, addr)
		p.wg.Add(1)
		go p.run(cli, i, pace)
	}
	t.Cleanup(p.end)
	return p
}

func (p *pacedClients) run(cli *clientv3.Client, i int, pace time.Duration) {
	defer p.wg.Done()
	tick := time.NewTicker(pace)
	defer tick.Stop()
	key := fmt.Sprintf("drain/%d", i)
	for n := 0; ; n++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, key, fmt.Sprint(n))
		if err == nil {
			_, err = cli.Get(ctx, key)
		}
		cancel()
		p.count(err)
	}
}

func (p *pacedClients) count(err error) {
	if err != nil {
		p.errs.Add(1)
		p.firstErr.CompareAndSwap(nil, &err)
		return
	}
	p.ops.Add(1)
}

// end stops the clients and waits for them.
func (p *pacedClients) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

// TestDrainMovesEtcdClients drains the member of a third of 100 paced
// etcd clients: the drain ends well under 10 s with every connection
// moved while quiet, none closed at the timeout, and no client sees an
// error; the member then holds no connection and gets none.
func TestDrainMovesEtcdClients(t *testing.T) {
	cluster := testutil.Cluster(t, 3)
	members := cluster.ClientAddrs()
	gw := startDrainGateway(t, members...)
	const clients = 100
	load := startPacedClients(t, clients, gw.addr, time.Second)
	testutil.WaitFor(t, "every client to connect and work", 30*time.Second, func() bool {
		return load.ops.Load() >= 2*clients
	})
	target := members[0]
	before := gw.endpoints(t)[target]
	start := time.Now()
	out, code := runCLI(t, "drain", "--config", gw.path, "etcd", target)
	took := time.Since(start)
	if code != 0 || !strings.Contains(out, fmt.Sprintf(`listener "etcd": endpoint %s drained: %d moved while quiet, 0 closed at the timeout, 0 open`, target, before.Open)) {
		t.Fatalf("drain: exit %d, %q; want %d moved", code, out, before.Open)
	}
	if took >= 10*time.Second {
		t.Fatalf("the drain of %d connections took %v, want under 10s", before.Open, took)
	}
	ops := load.ops.Load()
	testutil.WaitFor(t, "every client to work again after the drain", 30*time.Second, func() bool {
		return load.ops.Load() >= ops+2*clients
	})
	load.end()
	if n := load.errs.Load(); n != 0 {
		t.Fatalf("%d client errors, the first: %v", n, *load.firstErr.Load())
	}
	after := gw.endpoints(t)[target]
	if !after.Drained || after.State != "drained" || after.Open != 0 || after.Total != before.Total || after.Moves.Drain != uint64(before.Open) {
		t.Fatalf("the drained member in /status: %+v (before %+v)", after, before)
	}
	t.Logf("drained %d of %d clients' connections in %v; %d ops, 0 errors", before.Open, clients, took, load.ops.Load())
}

// TestDrainClosesABusyConnectionAtTheTimeout: a connection whose member
// never answers is never quiet; the drain closes it at its timeout,
// says so, and exits 0.
func TestDrainClosesABusyConnectionAtTheTimeout(t *testing.T) {
	silent := testutil.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	gw := startDrainGateway(t, silent.Addr)
	c := testutil.Dial(t, gw.addr)
	if _, err := c.Write([]byte("a request the member never answers")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the connection to reach the member", 5*time.Second, func() bool { return gw.endpoints(t)[silent.Addr].Open == 1 })
	start := time.Now()
	out, code := runCLI(t, "drain", "--config", gw.path, "--timeout", "1s", "etcd", silent.Addr)
	if code != 0 || !strings.Contains(out, "drained: 0 moved while quiet, 1 closed at the timeout, 0 open") {
		t.Fatalf("drain: exit %d, %q", code, out)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the drain ended after %v, before its timeout", took)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client's connection is still open")
	}
}

// TestDrainKeptAcrossReloadUntilUndrain: a drained endpoint gets no new
// connection, across a reload that keeps it; undrain brings it back; an
// address taken out of the file and put back comes back undrained.
func TestDrainKeptAcrossReloadUntilUndrain(t *testing.T) {
	a, b := testutil.Echo(t), testutil.Echo(t)
	gw := startDrainGateway(t, a.Addr, b.Addr)
	if out, code := runCLI(t, "drain", "--config", gw.path, "etcd", a.Addr); code != 0 || !strings.Contains(out, "drained: 0 moved while quiet, 0 closed at the timeout, 0 open") {
		t.Fatalf("drain: exit %d, %q", code, out)
	}
	before := a.Accepted() // the start's probe of the listener
	gw.write(t, []string{a.Addr, b.Addr}, "    dial-timeout: 2s\n")
	// The file watcher may apply it first: unchanged then.
	if out, code := runCLI(t, "reload", "--config", gw.path); code != 0 {
		t.Fatalf("reload: exit %d, %q", code, out)
	}
	if d := gw.drained(t); len(d) != 1 || d[0] != a.Addr {
		t.Fatalf("drained after the reload: %v, want %s", d, a.Addr)
	}
	for range 4 {
		if !testutil.Echoes(testutil.Dial(t, gw.addr)) {
			t.Fatal("no echo")
		}
	}
	if n := a.Accepted() - before; n != 0 {
		t.Fatalf("the drained endpoint got %d connections", n)
	}
	if out, code := runCLI(t, "undrain", "--config", gw.path, "etcd", a.Addr); code != 0 || !strings.Contains(out, "undrained") {
		t.Fatalf("undrain: exit %d, %q", code, out)
	}
	// Undrained, it returns as a member does: slow start gives it a
	// growing share of new connections.
	testutil.WaitFor(t, "the undrained endpoint to get a connection", 30*time.Second, func() bool {
		if c, err := net.Dial("tcp", gw.addr); err == nil {
			testutil.Echoes(c)
			_ = c.Close()
		}
		return a.Accepted() > before
	})
	runCLI(t, "drain", "--config", gw.path, "etcd", a.Addr)
	for _, eps := range [][]string{{b.Addr}, {a.Addr, b.Addr}} {
		gw.write(t, eps, "")
		if out, code := runCLI(t, "reload", "--config", gw.path); code != 0 {
			t.Fatalf("reload: exit %d, %q", code, out)
		}
	}
	if d := gw.drained(t); len(d) != 0 {
		t.Fatalf("drained after the address left the file and came back: %v", d)
	}
}

// TestDrainErrorsChangeNothing: an unknown listener, an unknown endpoint
// (the error lists the known ones), a bad timeout and no running gateway
// each get an error naming it, exit non-zero, and drain nothing.
func TestDrainErrorsChangeNothing(t *testing.T) {
	a := testutil.Echo(t)
	gw := startDrainGateway(t, a.Addr)
	none := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"drain", "--config", gw.path, "nope", a.Addr}, 1, `listener "nope": no such listener`},
		{[]string{"undrain", "--config", gw.path, "nope", a.Addr}, 1, `listener "nope": no such listener`},
		{[]string{"drain", "--config", gw.path, "etcd", "127.0.0.1:1"}, 1, `endpoint 127.0.0.1:1: no such endpoint (its endpoints: ` + a.Addr + `)`},
		{[]string{"drain", "--config", gw.path, "--timeout", "-1s", "etcd", a.Addr}, 1, "--timeout: timeout -1s: must be above 0s"},
		{[]string{"drain", "--config", gw.path, "--timeout", "2h", "etcd", a.Addr}, 1, "at most 1h0m0s"},
		{[]string{"drain", "--config", gw.path, "--timeout", "soon", "etcd", a.Addr}, exitUsage, `invalid argument "soon" for "--timeout"`},
		{[]string{"drain", "--control-socket", none, "etcd", a.Addr}, 1, "no gateway answers on control socket " + none},
		{[]string{"drain", "--config", gw.path, "etcd"}, exitUsage, "accepts 2 arg(s)"},
	} {
		out, code := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	if d := gw.drained(t); len(d) != 0 {
		t.Fatalf("drained after refused calls: %v", d)
	}
}

// TestDrainRefusesAnotherUser runs `etcd-gateway drain` as nobody: the
// control socket refuses it with a clear error, and nothing is drained.
func TestDrainRefusesAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a caller as another user")
	}
	a := testutil.Echo(t)
	gw := startDrainGateway(t, a.Addr)
	for d := filepath.Dir(gw.sock); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil { // nobody reaches the socket itself
			t.Fatal(err)
		}
	}
	cmd := gatewayCommand(setup{}, "drain", "--control-socket", gw.sock, "etcd", a.Addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	want := "control socket " + gw.sock + ": permission denied: only root, the gateway's user and control-group may change the running gateway"
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("drain as nobody: %v, %q; want refused", err, out)
	}
	if d := gw.drained(t); len(d) != 0 {
		t.Fatalf("drained after a refused call: %v", d)
	}
}

// TestDrainKeptAcrossHandover: a new process that takes over keeps the
// running one's drained endpoint drained, and gives it no connection.
func TestDrainKeptAcrossHandover(t *testing.T) {
	a, b := testutil.Echo(t), testutil.Echo(t)
	gw := startDrainGateway(t, a.Addr, b.Addr)
	upgradeSock := filepath.Join(filepath.Dir(gw.sock), "upgrade.sock")
	testutil.WaitFor(t, "the upgrade socket", 10*time.Second, func() bool {
		_, err := os.Stat(upgradeSock)
		return err == nil
	})
	if out, code := runCLI(t, "drain", "--config", gw.path, "etcd", a.Addr); code != 0 {
		t.Fatalf("drain: exit %d, %q", code, out)
	}
	next := startChild(t, gw.path, gw.addr, 0)
	next.tookOver(t)
	gw.waitExit(t, "the old gateway")
	gw.child = next
	if d := gw.drained(t); len(d) != 1 || d[0] != a.Addr {
		t.Fatalf("drained after the handover: %v, want %s", d, a.Addr)
	}
	before := a.Accepted()
	for range 4 {
		if !testutil.Echoes(testutil.Dial(t, gw.addr)) {
			t.Fatal("no echo")
		}
	}
	if n := a.Accepted() - before; n != 0 {
		t.Fatalf("the drained endpoint got %d connections after the handover", n)
	}
	if out, code := runCLI(t, "undrain", "--config", gw.path, "etcd", a.Addr); code != 0 {
		t.Fatalf("undrain on the new gateway: exit %d, %q", code, out)
	}
}
