package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// dnsConfig is a config file with two listeners in front of the member
// named m1.etcd.test: "srv" through _etcd-client._tcp.etcd.test, "static"
// through the host name, both through the DNS server d.
func dnsConfig(d *dnstest.Server, adminAddr, srvAddr, staticAddr string, port int) string {
	return fmt.Sprintf(`log-level: debug
admin-addr: %s
dns-server: %s
dns-refresh: 2s
shutdown-timeout: 2s
health-check: {interval: 500ms, timeout: 400ms}
listeners:
  - name: srv
    listen-addr: %s
    discovery-srv: etcd.test
    insecure-discovery: true
  - name: static
    listen-addr: %s
    endpoints: [m1.etcd.test:%d]
`, adminAddr, d.Addr, srvAddr, staticAddr, port)
}

// etcdRecords points the SRV record and m1.etcd.test at ip:port.
func etcdRecords(d *dnstest.Server, ip string, port int) {
	_, plain := resolver.SRV{Domain: "etcd.test"}.Names()
	d.SetSRV(plain, dnstest.SRV{Port: uint16(port), Target: "m1.etcd.test"})
	d.SetAddr("m1.etcd.test", ip)
}

// dnsFixture is a one-member cluster, a DNS server naming it and a
// gateway in front of it through DNS.
type dnsFixture struct {
	c                     *etcdtest.Cluster
	d                     *dnstest.Server
	h                     *harness
	port                  int
	admin, srv, staticLst string
}

func startDNSFixture(t *testing.T, c *etcdtest.Cluster) *dnsFixture {
	t.Helper()
	_, p, _ := net.SplitHostPort(c.ClientAddrs()[0])
	port, _ := strconv.Atoi(p)
	f := &dnsFixture{c: c, d: testutil.DNS(t), port: port, admin: testutil.ListenAddr(t), srv: testutil.ListenAddr(t), staticLst: testutil.ListenAddr(t)}
	etcdRecords(f.d, "127.0.0.1", port)
	dir := t.TempDir()
	f.h = startHarness(t, dir, filepath.Join(dir, "gw.yaml"), dnsConfig(f.d, f.admin, f.srv, f.staticLst, port))
	return f
}

// served reports whether a new etcd client through addr can write and
// read back; err says why not.
func served(t *testing.T, addr, key string) error {
	t.Helper()
	cli := testutil.Client(t, addr)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, key, "v"); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		return fmt.Errorf("get: %v (%d keys)", err, len(resp.Kvs))
	}
	return nil
}

// dnsState returns the state of name in the listener's /status.
func dnsState(t *testing.T, adminAddr, listener, name string) NameStatus {
	t.Helper()
	for _, ls := range status(t, adminAddr).Listeners {
		if ls.Name != listener || ls.DNS == nil {
			continue
		}
		for _, n := range ls.DNS.Names {
			if n.Name == name {
				return n
			}
		}
	}
	return NameStatus{}
}

// TestDNSOutageNeverReachesClients: with DNS broken in each way that gives
// no answer, new etcd clients of an SRV listener and of a static host-name
// listener are served from the last good addresses for the whole outage,
// no endpoint flaps, and when DNS comes back with another address for the
// member, new connections go there.
func TestDNSOutageNeverReachesClients(t *testing.T) {
	c := testutil.Cluster(t, 1)
	for _, tc := range []struct {
		name           string
		breakDNS, mend func(t *testing.T, d *dnstest.Server)
	}{
		{"server stopped", func(_ *testing.T, d *dnstest.Server) { d.Stop() }, func(t *testing.T, d *dnstest.Server) {
			if err := d.Restart(); err != nil {
				t.Fatal(err)
			}
		}},
		{"REFUSED", rcode(dns.RcodeRefused), rcode(dns.RcodeSuccess)},
		{"SERVFAIL", rcode(dns.RcodeServerFailure), rcode(dns.RcodeSuccess)},
		{"no answer", func(_ *testing.T, d *dnstest.Server) { d.SetSilent(true) }, func(_ *testing.T, d *dnstest.Server) { d.SetSilent(false) }},
		{"garbage", func(_ *testing.T, d *dnstest.Server) { d.SetGarbage(dnstest.RandomBytes) }, func(_ *testing.T, d *dnstest.Server) { d.SetGarbage(dnstest.NoGarbage) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startDNSFixture(t, c)
			for _, addr := range []string{f.srv, f.staticLst} {
				if err := served(t, addr, "before"); err != nil {
					t.Fatalf("before the outage, through %s: %v", addr, err)
				}
			}
			tc.breakDNS(t, f.d)
			testutil.WaitFor(t, "failed lookups of the name", 20*time.Second, func() bool {
				return dnsState(t, f.admin, "static", "m1.etcd.test").State == "failing"
			})
			for i := range 3 {
				for _, addr := range []string{f.srv, f.staticLst} {
					if err := served(t, addr, "during"+strconv.Itoa(i)); err != nil {
						t.Fatalf("during the outage, client %d through %s: %v", i, addr, err)
					}
				}
			}
			st := status(t, f.admin)
			for _, ls := range st.Listeners {
				if len(ls.Endpoints) != 1 || ls.Endpoints[0].State != "active" || ls.Endpoints[0].DialErrors != 0 || ls.Waiting != "" {
					t.Fatalf("listener %s during the outage: %+v", ls.Name, ls)
				}
			}
			n := dnsState(t, f.admin, "static", "m1.etcd.test")
			if n.LastError == "" || len(n.Addresses) != 1 || n.Failures == 0 {
				t.Fatalf("status of the name during the outage: %+v", n)
			}

			// Back, with the member behind another address.
			relay := testutil.Relay(t, net.JoinHostPort("127.0.0.2", strconv.Itoa(f.port)), c.ClientAddrs()[0])
			f.d.SetAddr("m1.etcd.test", "127.0.0.2")
			tc.mend(t, f.d)
			testutil.WaitFor(t, "new clients through the new address", 20*time.Second, func() bool {
				before := relay.Accepted()
				return served(t, f.staticLst, "after") == nil && relay.Accepted() > before
			})
			if code, body := testutil.Get(t, f.admin, "/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz after the outage: %d %s", code, body)
			}
		})
	}
}

func rcode(code int) func(*testing.T, *dnstest.Server) {
	return func(_ *testing.T, d *dnstest.Server) { d.SetRcode(code) }
}

// TestDNSTargetGoneRemovesEndpoint: an SRV target whose name DNS says no
// longer exists leaves the pool, as a config edit would remove it; the
// other target serves.
func TestDNSTargetGoneRemovesEndpoint(t *testing.T) {
	a, b := testutil.Echo(t), testutil.Echo(t)
	d := testutil.DNS(t)
	_, plain := resolver.SRV{Domain: "etcd.test"}.Names()
	d.SetSRV(plain, dnstest.SRV{Port: uint16(a.Port()), Target: "a.etcd.test"}, dnstest.SRV{Port: uint16(b.Port()), Target: "b.etcd.test"})
	d.SetAddr("a.etcd.test", "127.0.0.1")
	d.SetAddr("b.etcd.test", "127.0.0.1")
	dir, addr := t.TempDir(), testutil.ListenAddr(t)
	h := startHarness(t, dir, filepath.Join(dir, "gw.yaml"), fmt.Sprintf(
		"dns-server: %s\ndns-refresh: 2s\nhealth-check: {type: none}\nlisteners:\n  - {name: main, listen-addr: %q, discovery-srv: etcd.test, insecure-discovery: true}\n", d.Addr, addr))
	if got := len(h.endpoints("main")); got != 2 {
		t.Fatalf("%d endpoints, want 2", got)
	}
	d.Delete("b.etcd.test")
	want := "a.etcd.test:" + strconv.Itoa(a.Port())
	testutil.WaitFor(t, "b to leave the pool", 10*time.Second, func() bool {
		eps := h.endpoints("main")
		return len(eps) == 1 && eps[0] == want
	})
	if c := testutil.Dial(t, addr); !testutil.Echoes(c) {
		t.Fatal("the remaining target does not serve")
	}
	d.SetAddr("b.etcd.test", "127.0.0.1")
	testutil.WaitFor(t, "b back in the pool", 10*time.Second, func() bool { return len(h.endpoints("main")) == 2 })
}

// TestStartWithDNSDown: a gateway started while its DNS server is down
// binds every listener, says on /healthz which listener waits and why,
// closes their clients at once, and serves once DNS answers, by itself.
func TestStartWithDNSDown(t *testing.T) {
	c := testutil.Cluster(t, 1)
	_, p, _ := net.SplitHostPort(c.ClientAddrs()[0])
	port, _ := strconv.Atoi(p)
	d := testutil.DNS(t)
	etcdRecords(d, "127.0.0.1", port)
	d.Stop()
	adminAddr, srvAddr, staticAddr := testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	dir := t.TempDir()
	startHarness(t, dir, filepath.Join(dir, "gw.yaml"), dnsConfig(d, adminAddr, srvAddr, staticAddr, port))

	code, body := testutil.Get(t, adminAddr, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "listener \"") || !strings.Contains(body, "connection refused") {
		t.Fatalf("/healthz with DNS down: %d %q, want 503 naming a listener and the lookup error", code, body)
	}
	for _, ls := range status(t, adminAddr).Listeners {
		if ls.Waiting == "" {
			t.Fatalf("listener %s does not say it waits for DNS: %+v", ls.Name, ls)
		}
	}
	for _, addr := range []string{srvAddr, staticAddr} {
		conn := testutil.Dial(t, addr)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a client of %s while DNS is down: read %d, %v; want it closed at once", addr, n, err)
		}
	}

	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "/healthz to turn 200", 20*time.Second, func() bool {
		code, _ := testutil.Get(t, adminAddr, "/healthz")
		return code == http.StatusOK
	})
	for _, addr := range []string{srvAddr, staticAddr} {
		if err := served(t, addr, "k"); err != nil {
			t.Fatalf("through %s once DNS is back: %v", addr, err)
		}
	}
}

// TestNameThatDoesNotExistFailsStartAndReload: NXDOMAIN is the config's
// fault, unlike DNS that can't be reached.
func TestNameThatDoesNotExistFailsStartAndReload(t *testing.T) {
	d := testutil.DNS(t)
	d.SetAddr("good.etcd.test", "127.0.0.1")
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	text := func(name string) string {
		return fmt.Sprintf("dns-server: %s\nhealth-check: {type: none}\nlisteners:\n  - {name: main, listen-addr: %q, endpoints: [%s:2379]}\n", d.Addr, testutil.ListenAddr(t), name)
	}
	writeFile(t, path, text("typo.etcd.test"))
	snap, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if gw, err := Start(context.Background(), io.Discard, snap); err == nil {
		_ = gw.Shutdown()
		t.Fatal("the gateway started with a host name that does not exist")
	} else if !strings.Contains(err.Error(), `"typo.etcd.test"`) || !strings.Contains(err.Error(), `key "endpoints"`) {
		t.Fatalf("start error %q does not name the name and the key", err)
	}

	h := startHarness(t, dir, path, text("good.etcd.test"))
	saveRenameOver(t, path, text("typo.etcd.test"))
	st := h.waitRejected(1)
	if !strings.Contains(st.LastError, `"typo.etcd.test"`) {
		t.Fatalf("reload error %q does not name the name", st.LastError)
	}
}

// TestSilentDNSNeverBlocksProbes: while a reload and an SRV refresh wait
// on a DNS server that never answers, /healthz, /status and /metrics
// answer at once. A probe that waited for DNS would take seconds (the
// query timeout is 5s); the 100ms goal is counted and logged, and the
// test fails on any probe over a second, so that a busy CI machine can't
// fail it while a probe that waits for DNS always does.
func TestSilentDNSNeverBlocksProbes(t *testing.T) {
	a := testutil.Echo(t)
	d := testutil.DNS(t)
	etcdRecords(d, "127.0.0.1", a.Port())
	_, plain := resolver.SRV{Domain: "other.test"}.Names()
	d.SetSRV(plain, dnstest.SRV{Port: uint16(a.Port()), Target: "m1.etcd.test"})
	adminAddr, srvAddr, staticAddr := testutil.ListenAddr(t), testutil.ListenAddr(t), testutil.ListenAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	base := strings.NewReplacer("dns-refresh: 2s", "dns-refresh: 1s", "health-check: {interval: 500ms, timeout: 400ms}", "health-check: {type: none}").
		Replace(dnsConfig(d, adminAddr, srvAddr, staticAddr, a.Port()))
	h := startHarness(t, dir, path, base)
	d.SetSilent(true)

	// A reload that needs DNS: the SRV listener's domain changes.
	applied := make(chan error, 1)
	go func() {
		snap, err := config.Parse(path, []byte(strings.Replace(base, "etcd.test\n    insecure", "other.test\n    insecure", 1)))
		if err == nil {
			_, err = h.gw.Apply(context.Background(), config.Reload{Snapshot: snap})
		}
		applied <- err
	}()
	slow, blocked, during := 0, 0, 0
	var longest time.Duration
	for range 20 {
		for _, path := range []string{"/healthz", "/status", "/metrics"} {
			start := time.Now()
			testutil.Get(t, adminAddr, path)
			took := time.Since(start)
			longest = max(longest, took)
			if took > 100*time.Millisecond {
				slow++
			}
			if took > time.Second {
				blocked++
			}
		}
		select {
		case err := <-applied:
			applied <- err
		default:
			during++ // the reload is still waiting for DNS
		}
	}
	t.Logf("%d of 60 probes took over 100ms; the longest %v", slow, longest)
	if blocked != 0 {
		t.Fatalf("%d of 60 probes took over a second while DNS was silent: they waited for it", blocked)
	}
	if during < 10 {
		t.Fatalf("the reload ended after %d rounds: it did not wait for DNS, so the test proves nothing", during)
	}
	if err := <-applied; err != nil {
		t.Fatalf("a reload with DNS silent: %v", err)
	}
}
