package reconcile

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/miekg/dns"
	logtest "github.com/sirupsen/logrus/hooks/test"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// identityServer listens on ip:port (0 for any port), writes name and a
// newline to each connection, then echoes. It returns the port.
func identityServer(t *testing.T, ip, name string, port int) int {
	t.Helper()
	return testutil.ServeAt(t, net.JoinHostPort(ip, strconv.Itoa(port)), func(c net.Conn) {
		if _, err := c.Write([]byte(name + "\n")); err == nil {
			testutil.EchoConn(c)
		}
	}).Port()
}

// conn is a client connection through the gateway to an identity server.
type conn struct {
	net.Conn
	r *bufio.Reader
}

// greet connects to the gateway at addr and returns the connection and the
// name of the server it reached.
func greet(t *testing.T, addr string) (*conn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	cc := &conn{Conn: c, r: bufio.NewReader(c)}
	name, err := cc.r.ReadString('\n')
	if err != nil {
		return cc, "" // closed by the gateway: no upstream
	}
	return cc, strings.TrimSuffix(name, "\n")
}

// reached returns the name of the server a new connection reaches.
func reached(t *testing.T, addr string) string {
	t.Helper()
	c, name := greet(t, addr)
	c.Close()
	return name
}

// echo checks that c still carries bytes both ways.
func (c *conn) echo(t *testing.T) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatalf("write on an open connection: %v", err)
	}
	if got, err := c.r.ReadString('\n'); err != nil || got != "ping\n" {
		t.Fatalf("echo on an open connection: %q %v", got, err)
	}
}

// srvListener is a listener discovering plain records of domain, with a
// short dns-refresh.
func srvListener(name, domain string) config.Listener {
	lc := listenerConfig(name, nil)
	lc.DiscoverySRV = domain
	lc.InsecureDiscovery = true
	lc.DNSRefresh = 20 * time.Millisecond
	return lc
}

// applySRV starts a group on a snapshot with dns-server d and returns it
// with a hook that sees its log entries.
func applySRV(t *testing.T, d *dnstest.Server, ls ...config.Listener) (*Group, *logtest.Hook) {
	t.Helper()
	log := testutil.Logger(t)
	hook := logtest.NewLocal(log)
	g := newGroup(t, log)
	g.minRefresh = time.Millisecond // refresh at the listeners' dns-refresh
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	if _, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, DNSServer: d.Addr, Listeners: ls}); err != nil {
		t.Fatal(err)
	}
	return g, hook
}

// plainSRV sets the _etcd-client records of domain to one target
// resolving to 127.0.0.1.
func plainSRV(d *dnstest.Server, domain, target string, port int) {
	_, plainName := resolver.SRV{Domain: domain}.Names()
	d.SetAddr(target, "127.0.0.1")
	d.SetSRV(plainName, dnstest.SRV{Port: uint16(port), Target: target})
}

func poolAddrs(g *Group, name string) []string {
	return endpointAddrs(g.Listeners()[name].Pool())
}

func TestSRVDiscoveryProxiesEtcd(t *testing.T) {
	t.Parallel()
	c := testutil.Cluster(t, 1)
	host, port, err := net.SplitHostPort(c.Members[0].ClientAddr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	for _, tc := range []struct{ kind, name string }{
		{"plain", ""}, {"plain", "prod"}, {"ssl", ""}, {"ssl", "prod"},
	} {
		t.Run(tc.kind+"/name="+tc.name, func(t *testing.T) {
			d := testutil.DNS(t)
			s := resolver.SRV{Domain: "etcd.test", Name: tc.name}
			tlsName, plainName := s.Names()
			recName := plainName
			if tc.kind == "ssl" {
				recName = tlsName
			}
			d.SetAddr("m0.etcd.test", host)
			d.SetSRV(recName, dnstest.SRV{Port: uint16(p), Weight: 1, Target: "m0.etcd.test"})

			// The test etcd speaks plain HTTP: insecure-discovery takes the
			// records as they are.
			lc := srvListener("main", "etcd.test")
			lc.DiscoverySRVName = tc.name
			g, _ := applySRV(t, d, lc)
			if got := poolAddrs(g, "main"); len(got) != 1 || got[0] != "m0.etcd.test:"+port {
				t.Fatalf("pool endpoints %q, want the SRV target", got)
			}
			cli := testutil.Client(t, gatewayAddr(t, g, "main"))
			ctx := ctxTimeout(t, 20*time.Second)
			if _, err := cli.Put(ctx, "srv/"+tc.kind+tc.name, "v"); err != nil {
				t.Fatalf("put through the gateway: %v", err)
			}
			resp, err := cli.Get(ctx, "srv/", clientv3.WithPrefix())
			if err != nil || resp.Count == 0 {
				t.Fatalf("get through the gateway: %v %v", resp, err)
			}
		})
	}
}

// servedNames starts a TLS server for each name, its certificate issued
// by ca, and returns their ports.
func servedNames(t *testing.T, ca *tlstest.CA, names ...string) []int {
	t.Helper()
	var ports []int
	for _, name := range names {
		cert, err := ca.Issue(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tlstest.Serve(&tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		ports = append(ports, s.Port)
	}
	return ports
}

func TestSRVValidatedTLSEndpointIsProxied(t *testing.T) {
	t.Parallel()
	ca, err := tlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	ports := servedNames(t, ca, "secure.test", "elsewhere.test") // a good and a wrong name
	caFile, err := ca.WriteFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := testutil.DNS(t)
	tlsName, _ := resolver.SRV{Domain: "secure.test"}.Names()
	d.SetAddr("good.secure.test", "127.0.0.1")
	d.SetAddr("wrong.secure.test", "127.0.0.1")
	d.SetSRV(tlsName,
		dnstest.SRV{Port: uint16(ports[0]), Target: "good.secure.test"},
		dnstest.SRV{Port: uint16(ports[1]), Target: "wrong.secure.test"})

	lc := srvListener("secure", "secure.test")
	lc.InsecureDiscovery = false
	lc.TrustedCAFile = caFile
	g, hook := applySRV(t, d, lc)
	if got := poolAddrs(g, "secure"); len(got) != 1 || got[0] != "good.secure.test:"+strconv.Itoa(ports[0]) {
		t.Fatalf("pool endpoints %q, want only the endpoint whose certificate verifies", got)
	}
	warned := false
	for _, e := range hook.AllEntries() {
		if e.Message == "discovered endpoint dropped" && strings.Contains(e.Data["reason"].(string), "not secure.test") {
			warned = true
		}
	}
	if !warned {
		t.Fatal("no warning saying why the wrong-name endpoint was dropped")
	}

	// A TLS client goes through the gateway to the member.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", gatewayAddr(t, g, "secure"),
		&tls.Config{ServerName: "secure.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("TLS through the gateway: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != tlstest.Greeting {
		t.Fatalf("read %q %v", got, err)
	}
}

func TestSRVRecordChangeReachesNewConnectionsOnly(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	portA, portB := identityServer(t, "127.0.0.1", "A", 0), identityServer(t, "127.0.0.1", "B", 0)
	plainSRV(d, "example.test", "a.example.test", portA)
	d.SetAddr("b.example.test", "127.0.0.1")
	g, hook := applySRV(t, d, srvListener("main", "example.test"))
	addr := gatewayAddr(t, g, "main")

	open, name := greet(t, addr)
	if name != "A" {
		t.Fatalf("reached %q, want A", name)
	}
	epA := g.Listeners()["main"].Pool().Endpoints()[0]

	plainSRV(d, "example.test", "b.example.test", portB)
	testutil.WaitFor(t, "new connections to reach B", 10*time.Second, func() bool { return reached(t, addr) == "B" })
	if !epA.Stats().Removed {
		t.Fatal("A is still in the pool")
	}
	open.echo(t) // the open connection to A is untouched
	logged := 0
	for _, e := range hook.AllEntries() {
		if e.Message != "endpoints updated" {
			continue
		}
		logged++
		if e.Data["source"] != "dns" {
			t.Fatalf("a change made by DNS logged with source %v, want dns", e.Data["source"])
		}
	}
	if logged == 0 {
		t.Fatal("the change was not logged")
	}
}

func TestSRVMovedMemberIsFollowed(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	port := testutil.SharedPort(t, "127.0.0.1", "127.0.0.2")
	identityServer(t, "127.0.0.1", "old", port)
	identityServer(t, "127.0.0.2", "new", port)
	plainSRV(d, "example.test", "m.example.test", port)
	lc := srvListener("main", "example.test")
	lc.DNSRefresh = time.Hour // the SRV answer does not change
	g, _ := applySRV(t, d, lc)
	addr := gatewayAddr(t, g, "main")
	if got := reached(t, addr); got != "old" {
		t.Fatalf("reached %q, want old", got)
	}
	ep := g.Listeners()["main"].Pool().Endpoints()[0]
	d.SetAddr("m.example.test", "127.0.0.2")
	// The name is asked again when its TTL (1s) runs out.
	testutil.WaitFor(t, "new connections to reach the new address", 10*time.Second, func() bool { return reached(t, addr) == "new" })
	if now := g.Listeners()["main"].Pool().Endpoints()[0]; now != ep {
		t.Fatal("the endpoint was replaced: its state is lost")
	}
}

func TestSRVDNSTroubleKeepsThePool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		breakDNS func(d *dnstest.Server)
	}{
		{"SERVFAIL", func(d *dnstest.Server) { d.SetRcode(dns.RcodeServerFailure) }},
		{"empty answer", func(d *dnstest.Server) {
			_, plainName := resolver.SRV{Domain: "example.test"}.Names()
			d.SetSRV(plainName)
		}},
		{"server stopped", func(d *dnstest.Server) { d.Stop() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testutil.DNS(t)
			plainSRV(d, "example.test", "a.example.test", identityServer(t, "127.0.0.1", "A", 0))
			g, hook := applySRV(t, d, srvListener("main", "example.test"))
			before := poolAddrs(g, "main")
			tc.breakDNS(d)
			// The lookups are counted by result, for the metrics.
			dns := g.LookupCounters("main")
			testutil.WaitFor(t, "failed refreshes", 10*time.Second, func() bool { return dns.Failed() >= 3 })
			if got := poolAddrs(g, "main"); strings.Join(got, ",") != strings.Join(before, ",") {
				t.Fatalf("pool went from %q to %q", before, got)
			}
			if dns.Succeeded() < 1 {
				t.Fatalf("lookup counters: %d succeeded; want the first success counted", dns.Succeeded())
			}
			// One warning for the outage, not one per failed refresh.
			n := 0
			for _, e := range hook.AllEntries() {
				if strings.Contains(e.Message, "keeping the last good endpoints") {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d warnings for %d failed refreshes, want 1", n, dns.Failed())
			}
		})
	}
}

func TestSRVNothingFoundFailsApplyAndChangesNothing(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	static := listenerConfig("static", []string{"127.0.0.1:1"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	static.ListenAddr = ln.Addr().String()
	ln.Close()

	g := newGroup(t, testutil.Logger(t))
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	_, err = g.Apply(context.Background(), &config.Snapshot{
		File: "/etc/gw.yaml", ShutdownTimeout: time.Second, DNSServer: d.Addr,
		Listeners: []config.Listener{static, srvListener("discovered", "nothing.test")},
	})
	if err == nil {
		t.Fatal("Apply succeeded with a listener whose discovery found nothing")
	}
	for _, want := range []string{"/etc/gw.yaml", `listener "discovered"`, `key "discovery-srv"`,
		"_etcd-client-ssl._tcp.nothing.test", "_etcd-client._tcp.nothing.test", "NXDOMAIN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(g.Listeners()) != 0 {
		t.Fatalf("listeners started: %v", g.Listeners())
	}
	ln, err = net.Listen("tcp", static.ListenAddr)
	if err != nil {
		t.Fatalf("the other listener's address was left bound: %v", err)
	}
	ln.Close()
}

func TestSRVReloadSwitchesSource(t *testing.T) {
	t.Parallel()
	d1, d2 := testutil.DNS(t), testutil.DNS(t)
	portA := identityServer(t, "127.0.0.1", "A", 0)
	plainSRV(d1, "example.test", "b.example.test", identityServer(t, "127.0.0.1", "B", 0))
	plainSRV(d2, "example.test", "c.example.test", identityServer(t, "127.0.0.1", "C", 0))

	g := newGroup(t, testutil.Logger(t))
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	apply := func(dnsServer string, lc config.Listener) Diff { t.Helper(); return applyListener(t, g, dnsServer, lc) }
	refresh := func() *srvRefresh { return runningRefresh(g, "main") }
	static := listenerConfig("main", []string{"127.0.0.1:" + strconv.Itoa(portA)})
	discovered := srvListener("main", "example.test")
	discovered.DNSRefresh = time.Hour

	apply(d1.Addr, static)
	addr := gatewayAddr(t, g, "main")
	if got := reached(t, addr); got != "A" {
		t.Fatalf("static: reached %q", got)
	}

	diff := apply(d1.Addr, discovered)
	if ed := diff.Endpoints["main"]; len(ed.Added) != 1 || ed.Added[0] != poolAddrs(g, "main")[0] || len(ed.Removed) != 1 {
		t.Fatalf("static to SRV: diff %+v", diff)
	}
	if got := reached(t, addr); got != "B" {
		t.Fatalf("static to SRV: reached %q, want B", got)
	}
	first := refresh()

	// Unchanged discovery, other settings changed: no new resolution.
	q := d1.Queries()
	discovered.RetryDelay = 2 * time.Hour
	apply(d1.Addr, discovered)
	if d1.Queries() != q || refresh() != first {
		t.Fatal("a reload that left discovery alone resolved it again or restarted its refresh")
	}

	// Another dns-server: resolved there, and targets resolved there too.
	apply(d2.Addr, discovered)
	if got := reached(t, addr); got != "C" {
		t.Fatalf("after changing dns-server reached %q, want C", got)
	}
	second := refresh()
	if second == first || !first.stopped() {
		t.Fatal("the old refresh was not replaced and stopped")
	}

	apply(d2.Addr, static)
	if refresh() != nil || !second.stopped() {
		t.Fatal("back to static endpoints, the SRV refresh still runs")
	}
	if got := reached(t, addr); got != "A" {
		t.Fatalf("back to static: reached %q, want A", got)
	}
}

// applyListener applies a snapshot of lc alone, with dnsServer, to g.
func applyListener(t *testing.T, g *Group, dnsServer string, lc config.Listener) Diff {
	t.Helper()
	diff, err := g.Apply(context.Background(), &config.Snapshot{ShutdownTimeout: time.Second, DNSServer: dnsServer, Listeners: []config.Listener{lc}})
	if err != nil {
		t.Fatal(err)
	}
	return diff
}

// runningRefresh returns the SRV refresh listener name runs; nil for
// none.
func runningRefresh(g *Group, name string) *srvRefresh {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.listeners[name].src.running()
}

func TestSRVFromEtcdFlags(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	plainSRV(d, "example.test", "a.example.test", identityServer(t, "127.0.0.1", "A", 0))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := config.DefaultFlags()
	f.ListenAddr = ln.Addr().String() // validated: a real port
	ln.Close()
	f.DiscoverySRV = "example.test"
	f.InsecureDiscovery = true
	snap, err := config.FromFlags(f)
	if err != nil {
		t.Fatal(err)
	}
	snap.DNSServer = d.Addr // no flag for it; the test's DNS server
	g := newGroup(t, testutil.Logger(t))
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	if _, err := g.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if got := reached(t, gatewayAddr(t, g, config.DefaultListenerName)); got != "A" {
		t.Fatalf("reached %q, want A through --discovery-srv", got)
	}
}

func TestSRVSeveralListenersResolvedTogether(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	plainSRV(d, "one.test", "a.one.test", identityServer(t, "127.0.0.1", "one", 0))
	plainSRV(d, "two.test", "a.two.test", identityServer(t, "127.0.0.1", "two", 0))
	static := listenerConfig("static", []string{"127.0.0.1:" + strconv.Itoa(identityServer(t, "127.0.0.1", "static", 0))})
	g, _ := applySRV(t, d, srvListener("one", "one.test"), srvListener("two", "two.test"), static)
	for _, name := range []string{"one", "static", "two"} {
		if got := reached(t, gatewayAddr(t, g, name)); got != name {
			t.Errorf("listener %s reached %q", name, got)
		}
	}
}
