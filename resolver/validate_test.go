package resolver

import (
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	"github.com/etcd-gateway/etcd-gateway/internal/dnstest"
)

// secureZone serves _etcd-client-ssl records for secure.test, one per
// target, each target's address being 127.0.0.1, and returns the SRV
// discovery for it with the DNS server set.
func secureZone(t *testing.T, ports map[string]int) (SRV, *dnstest.Server) {
	t.Helper()
	d := testutil.DNS(t)
	s := SRV{Domain: "secure.test", DNSServer: d.Addr}
	tlsName, _ := s.Names()
	var recs []dnstest.SRV
	for target, port := range ports {
		d.SetAddr(target, "127.0.0.1")
		recs = append(recs, dnstest.SRV{Port: uint16(port), Weight: 1, Target: target})
	}
	d.SetSRV(tlsName, recs...)
	return s, d
}

func addr(target string, port int) string { return net.JoinHostPort(target, strconv.Itoa(port)) }

func TestTLSValidation(t *testing.T) {
	t.Parallel()
	ca, otherCA := newCA(t, "test CA"), newCA(t, "unknown CA")
	ports := map[string]int{
		"good.secure.test":      tlsServer(t, ca.issue(t, "secure.test"), nil),
		"wrongname.secure.test": tlsServer(t, ca.issue(t, "other.test"), nil),
		"unknownca.secure.test": tlsServer(t, otherCA.issue(t, "secure.test"), nil),
		// Accepts TCP but does not speak TLS: etcd's gateway took a TCP
		// connection for validation.
		"plain.secure.test": tcpServer(t, "127.0.0.1", "not TLS", 0),
		"dead.secure.test":  refusingPort(t),
	}
	s, _ := secureZone(t, ports)
	s.TrustedCAFile = ca.file(t)

	res, err := resolve(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Endpoints) != 1 || res.Endpoints[0].Addr != addr("good.secure.test", ports["good.secure.test"]) || !res.Endpoints[0].TLS {
		t.Fatalf("endpoints %+v, want only good.secure.test", res.Endpoints)
	}
	reasons := map[string]string{}
	for _, d := range res.Dropped {
		reasons[d.Addr] = d.Reason
	}
	for target, want := range map[string]string{
		"wrongname.secure.test": "not secure.test",
		"unknownca.secure.test": "unknown authority",
		"plain.secure.test":     "TLS handshake",
		"dead.secure.test":      "connection refused",
	} {
		r := reasons[addr(target, ports[target])]
		if !strings.Contains(r, "TLS validation failed") || !strings.Contains(r, want) {
			t.Errorf("%s: dropped because %q, want a TLS validation failure mentioning %q", target, r, want)
		}
	}
}

func TestTLSValidationUsesSystemRootsWithoutCAFile(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "test CA")
	port := tlsServer(t, ca.issue(t, "secure.test"), nil)
	s, _ := secureZone(t, map[string]int{"good.secure.test": port})
	res, err := resolve(t, s)
	if !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("err=%v: a certificate from a private CA verified against the system roots", err)
	}
	if len(res.Dropped) != 1 || !strings.Contains(res.Dropped[0].Reason, "unknown authority") {
		t.Fatalf("dropped %+v", res.Dropped)
	}
}

func TestTLSValidationPassesWhenOnlyClientCertIsMissing(t *testing.T) {
	t.Parallel()
	// A TLS 1.2 member with client-cert-auth aborts the handshake after
	// its own certificate was verified: it proved who it is.
	ca := newCA(t, "test CA")
	port := tlsServer(t, ca.issue(t, "secure.test"), func(c *tls.Config) {
		c.MaxVersion = tls.VersionTLS12
		c.ClientAuth = tls.RequireAndVerifyClientCert
	})
	s, _ := secureZone(t, map[string]int{"mtls.secure.test": port})
	s.TrustedCAFile = ca.file(t)
	res, err := resolve(t, s)
	if err != nil || len(res.Endpoints) != 1 {
		t.Fatalf("err=%v endpoints=%+v dropped=%+v, want the member kept", err, res.Endpoints, res.Dropped)
	}
}

func TestInsecureDiscoverySkipsValidation(t *testing.T) {
	t.Parallel()
	s, d := secureZone(t, map[string]int{"dead.secure.test": refusingPort(t)})
	_, plainName := s.Names()
	d.SetSRV(plainName, dnstest.SRV{Port: 2379, Target: "plain.secure.test"})
	s.Insecure = true
	res, err := resolve(t, s)
	if err != nil || len(res.Endpoints) != 2 || len(res.Dropped) != 0 {
		t.Fatalf("err=%v endpoints=%+v dropped=%+v, want both records kept as they are", err, res.Endpoints, res.Dropped)
	}
}

func TestTrustedCAFileProblems(t *testing.T) {
	t.Parallel()
	s, _ := secureZone(t, map[string]int{"good.secure.test": refusingPort(t)})
	s.TrustedCAFile = t.TempDir() + "/missing.pem"
	if _, err := resolve(t, s); err == nil || !strings.Contains(err.Error(), "trusted-ca-file") {
		t.Fatalf("err=%v, want an error naming trusted-ca-file", err)
	}
}
