package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// namedPool returns a pool whose one endpoint is name:port, a name the
// real DNS server resolves to ips (none: the name is never asked), dialled
// and looked up through a Hosts as the gateway wires them.
func namedPool(t *testing.T, name string, port int, ips ...string) (*Pool, *Endpoint) {
	t.Helper()
	d := testutil.DNS(t)
	hosts := resolver.NewHosts(resolver.HostsOptions{DNSServer: d.Addr})
	t.Cleanup(hosts.Close)
	if len(ips) > 0 {
		d.SetAddr(name, ips...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if st := hosts.Resolve(ctx, []string{name})[0]; len(st.Addrs) != len(ips) {
			t.Fatalf("%s resolved to %v, want %v", name, st.Addrs, ips)
		}
	}
	p := NewPool(Options{Dial: hosts.Dial, Lookup: hosts.Addrs, Log: testutil.Logger(t)})
	t.Cleanup(p.Close)
	p.UpdateFrom("config", resolver.Static([]string{net.JoinHostPort(name, strconv.Itoa(port))}))
	return p, p.Endpoints()[0]
}

// TestPlanTriesEachAddressOfAName: a host name's cached addresses are
// tried in order, by NextAddr as by Dial: a refusing first address moves
// to the second without the endpoint failing; only when every address
// failed is the endpoint marked down.
func TestPlanTriesEachAddressOfAName(t *testing.T) {
	port := testutil.SharedPort(t, "127.0.0.2", "127.0.0.3")
	echo := testutil.ServeAt(t, "127.0.0.3:"+strconv.Itoa(port), testutil.EchoConn) // 127.0.0.2 refuses
	p, ep := namedPool(t, "m.example.test", echo.Port(), "127.0.0.2", "127.0.0.3")
	if !p.Nonblocking() {
		t.Fatal("a pool of a host name is not dialled in the loops")
	}

	plan, err := p.Plan()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 { // bounded: two addresses, then the end
		e, addr, ok := plan.NextAddr()
		if !ok {
			break
		}
		if e != ep {
			t.Fatalf("NextAddr gave endpoint %s, want %s", e.Addr(), ep.Addr())
		}
		got = append(got, addr.String())
		plan.Failed(errors.New("refused"))
	}
	want := []string{"127.0.0.2:" + strconv.Itoa(echo.Port()), "127.0.0.3:" + strconv.Itoa(echo.Port())}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("NextAddr gave %v, want %v", got, want)
	}
	if ep.Stats().Active {
		t.Fatal("an endpoint all of whose addresses failed is still active")
	}
	if err := plan.Err(); !strings.Contains(err.Error(), "2 addresses failed") {
		t.Fatalf("plan error %q does not say both addresses failed", err)
	}

	p.markUp(ep, "test")
	conn, dialled, err := p.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial past the refusing address: %v", err)
	}
	defer conn.Close()
	if dialled != ep || !ep.Stats().Active || conn.RemoteAddr().String() != want[1] {
		t.Fatalf("Dial reached %s of %s, active %v; want %s, the endpoint active", conn.RemoteAddr(), dialled.Addr(), ep.Stats().Active, want[1])
	}
	if f := p.Stats().Failovers; f != 0 {
		t.Fatalf("%d failovers counted for an endpoint that answered", f)
	}
}

// TestPlanOfAnUnresolvedName: a name with no address fails as unresolved,
// a local failure: the endpoint is not marked down, in NextAddr as in
// Dial.
func TestPlanOfAnUnresolvedName(t *testing.T) {
	p, ep := namedPool(t, "never.example.test", 2379)
	plan, err := p.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := plan.NextAddr(); ok {
		t.Fatal("NextAddr gave an address for a name never resolved")
	}
	if err := plan.Err(); !errors.Is(err, resolver.ErrUnresolved) || !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("plan error %v, want ErrNoEndpoint and ErrUnresolved", err)
	}
	if _, _, err := p.Dial(context.Background()); !errors.Is(err, resolver.ErrUnresolved) {
		t.Fatalf("Dial error %v, want ErrUnresolved", err)
	}
	if !ep.Stats().Active {
		t.Fatal("an unresolved name was marked down")
	}
}

// TestNonblockingIsNoTLSOrigination: the loops dial a pool of host names,
// or with no endpoint yet, unless it originates TLS; a pool without
// Lookup dials its host names only through Dial.
func TestNonblockingIsNoTLSOrigination(t *testing.T) {
	p, _ := namedPool(t, "never.example.test", 2379)
	p.SetSettings(Settings{Originate: &tls.Config{}})
	if p.Nonblocking() {
		t.Fatal("a pool originating TLS is dialled in the loops")
	}
	empty := NewPool(Options{Lookup: func(string) ([]netip.Addr, error) { return nil, nil }})
	defer empty.Close()
	if !empty.Nonblocking() {
		t.Fatal("a pool waiting for its endpoints is not dialled in the loops")
	}
	noLookup := NewPool(Options{})
	defer noLookup.Close()
	noLookup.UpdateFrom("config", resolver.Static([]string{"m.example.test:2379"}))
	if noLookup.Nonblocking() {
		t.Fatal("a pool without Lookup has its host names dialled in the loops")
	}
}
