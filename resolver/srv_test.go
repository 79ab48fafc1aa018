package resolver

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/miekg/dns"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
)

func resolve(t *testing.T, s SRV) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Resolve(ctx)
}

func TestNamesAsEtcd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s              SRV
		tlsName, plain string
	}{
		{SRV{Domain: "example.com"}, "_etcd-client-ssl._tcp.example.com", "_etcd-client._tcp.example.com"},
		{SRV{Domain: "example.com.", Name: "prod"}, "_etcd-client-ssl-prod._tcp.example.com", "_etcd-client-prod._tcp.example.com"},
	} {
		tlsName, plain := tc.s.Names()
		if tlsName != tc.tlsName || plain != tc.plain {
			t.Errorf("%+v: names %q %q, want %q %q", tc.s, tlsName, plain, tc.tlsName, tc.plain)
		}
	}
}

func TestResolveBothRecordKinds(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "prod"} {
		t.Run("name="+name, func(t *testing.T) {
			d := testutil.DNS(t)
			s := SRV{Domain: "example.test", Name: name, Insecure: true, DNSServer: d.Addr}
			tlsName, plainName := s.Names()
			d.SetSRV(tlsName,
				dnstest.SRV{Priority: 0, Weight: 10, Port: 2379, Target: "a.example.test"},
				dnstest.SRV{Priority: 1, Weight: 5, Port: 2379, Target: "b.example.test"})
			d.SetSRV(plainName, dnstest.SRV{Priority: 0, Weight: 0, Port: 12379, Target: "c.example.test."})
			// Records under the other naming must not be used.
			other := SRV{Domain: "example.test", Name: "other"}
			if name != "" {
				other = SRV{Domain: "example.test"}
			}
			otherTLS, otherPlain := other.Names()
			d.SetSRV(otherTLS, dnstest.SRV{Port: 1, Target: "wrong.example.test"})
			d.SetSRV(otherPlain, dnstest.SRV{Port: 1, Target: "wrong.example.test"})

			res, err := resolve(t, s)
			if err != nil {
				t.Fatal(err)
			}
			want := []Endpoint{
				{Addr: "a.example.test:2379", Priority: 0, Weight: 10, TLS: true},
				{Addr: "c.example.test:12379", Priority: 0, Weight: 0},
				{Addr: "b.example.test:2379", Priority: 1, Weight: 5, TLS: true},
			}
			if !reflect.DeepEqual(res.Endpoints, want) {
				t.Fatalf("endpoints\n got %+v\nwant %+v", res.Endpoints, want)
			}
			if q := res.Queried(); !slices.Equal(q, []string{tlsName, plainName}) {
				t.Fatalf("queried %q", q)
			}
			if res.Lookups[0].Records != 2 || res.Lookups[1].Records != 1 {
				t.Fatalf("lookups %+v", res.Lookups)
			}
		})
	}
}

func TestResolveOneNameIsEnough(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	s := SRV{Domain: "example.test", Insecure: true, DNSServer: d.Addr}
	tlsName, plainName := s.Names()
	d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "a.example.test"})
	d.SetRcode(dns.RcodeServerFailure, tlsName)

	res, err := resolve(t, s)
	if err != nil {
		t.Fatalf("one name answering must be enough: %v", err)
	}
	if len(res.Endpoints) != 1 || res.Endpoints[0].Addr != "a.example.test:2379" {
		t.Fatalf("endpoints %+v", res.Endpoints)
	}
	if res.Lookups[0].Err == nil || !strings.Contains(res.Lookups[0].Err.Error(), "SERVFAIL") {
		t.Fatalf("TLS lookup: %+v, want a SERVFAIL error", res.Lookups[0])
	}
}

func TestResolveTellsFailuresApart(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	s := SRV{Domain: "example.test", Insecure: true, DNSServer: d.Addr}
	tlsName, plainName := s.Names()
	d.SetSRV(plainName) // exists, no records
	// tlsName: no record at all, NXDOMAIN.
	res, err := resolve(t, s)
	if !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("err=%v, want ErrNoEndpoints", err)
	}
	if l := res.Lookups[0]; !l.NXDomain || l.Err != nil {
		t.Errorf("TLS lookup %+v, want NXDOMAIN", l)
	}
	if l := res.Lookups[1]; l.NXDomain || l.Err != nil || l.Records != 0 {
		t.Errorf("plain lookup %+v, want an empty answer", l)
	}
	for _, want := range []string{tlsName, plainName, "NXDOMAIN", "no SRV records", `discovery-srv "example.test"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	d.SetRcode(dns.RcodeServerFailure)
	res, err = resolve(t, s)
	if !errors.Is(err, ErrNoEndpoints) || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("err=%v, want ErrNoEndpoints naming SERVFAIL", err)
	}
	for _, l := range res.Lookups {
		if l.Err == nil || l.NXDomain {
			t.Errorf("lookup %+v, want an error, not an answer", l)
		}
	}

	d.Stop()
	res, err = resolve(t, s)
	if !errors.Is(err, ErrNoEndpoints) || res.Lookups[0].Err == nil || res.Lookups[1].Err == nil {
		t.Fatalf("server stopped: err=%v lookups %+v", err, res.Lookups)
	}
}

func TestTargetsBecomeHostPort(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	s := SRV{Domain: "example.test", Insecure: true, DNSServer: d.Addr}
	_, plainName := s.Names()
	d.SetSRV(plainName,
		dnstest.SRV{Port: 2379, Target: "Member-1.example.test."},
		dnstest.SRV{Port: 2379, Target: "::1"},
		dnstest.SRV{Port: 2379, Target: "."},
		dnstest.SRV{Port: 0, Target: "zero.example.test"},
		dnstest.SRV{Port: 2379, Target: "member-1.example.test"}, // the first again
		dnstest.SRV{Port: 2379, Target: "bad]name.example.test"}, // found by FuzzSRVAnswer
	)
	res, err := resolve(t, s)
	if err != nil {
		t.Fatal(err)
	}
	got := addrs(res.Endpoints)
	slices.Sort(got)
	if want := []string{"[::1]:2379", "member-1.example.test:2379"}; !slices.Equal(got, want) {
		t.Fatalf("endpoints %q, want %q", got, want)
	}
	reasons := map[string]string{}
	for _, dr := range res.Dropped {
		reasons[dr.Addr] = dr.Reason
	}
	if !strings.Contains(reasons["."], "not available") || reasons["zero.example.test:0"] != "port 0" ||
		!strings.Contains(reasons["member-1.example.test:2379"], "more than once") ||
		!strings.Contains(reasons["bad]name.example.test:2379"], "neither a host name nor an IP address") {
		t.Fatalf("dropped %+v", res.Dropped)
	}
}

func TestPlainRecordsNeedInsecureDiscovery(t *testing.T) {
	t.Parallel()
	d := testutil.DNS(t)
	s := SRV{Domain: "example.test", DNSServer: d.Addr}
	_, plainName := s.Names()
	d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "a.example.test"})
	res, err := resolve(t, s)
	if !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("err=%v, want ErrNoEndpoints", err)
	}
	if len(res.Dropped) != 1 || !strings.Contains(res.Dropped[0].Reason, "insecure-discovery") {
		t.Fatalf("dropped %+v, want the plain record dropped for want of insecure-discovery", res.Dropped)
	}
	if !strings.Contains(err.Error(), "a.example.test:2379") || !strings.Contains(err.Error(), "insecure-discovery") {
		t.Fatalf("error %q does not say what was dropped and why", err)
	}
}

func TestDialerResolvesTargetsThroughDNSServer(t *testing.T) {
	t.Parallel()
	// A second server on another loopback address, same port: where the
	// member "moves" to.
	d, port := movingName(t, "member.example.test", "first", "second")
	dial := Dialer(d.Addr)
	hello := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := dial(ctx, "tcp", "member.example.test:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := hello(); got != "first" {
		t.Fatalf("reached %q, want first", got)
	}
	d.SetAddr("member.example.test", "127.0.0.2")
	if got := hello(); got != "second" {
		t.Fatalf("after the address record changed reached %q, want second: a moved member must be followed", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := dial(ctx, "tcp", "unknown.example.test:1")
	if err == nil || !strings.Contains(err.Error(), d.Addr) {
		t.Fatalf("dialling a name the DNS server does not know: err=%v, want a lookup error naming %s", err, d.Addr)
	}
}

func TestFromConfig(t *testing.T) {
	t.Parallel()
	l := config.Listener{DiscoverySRV: "example.com", DiscoverySRVName: "n", InsecureDiscovery: true, TrustedCAFile: "/ca.pem"}
	got := FromConfig("10.0.0.53:53", l)
	want := SRV{Domain: "example.com", Name: "n", Insecure: true, TrustedCAFile: "/ca.pem", DNSServer: "10.0.0.53:53"}
	if got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
}
