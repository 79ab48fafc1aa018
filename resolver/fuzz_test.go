package resolver

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// srvAnswer packs a DNS answer holding records, for seeds.
func srvAnswer(f *testing.F, records ...*dns.SRV) []byte {
	m := new(dns.Msg)
	m.SetQuestion("_etcd-client._tcp.example.test.", dns.TypeSRV)
	m.Response = true
	for _, r := range records {
		r.Hdr = dns.RR_Header{Name: "_etcd-client._tcp.example.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 30}
		m.Answer = append(m.Answer, r)
	}
	b, err := m.Pack()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzSRVAnswer turns the SRV records of any DNS message into endpoints:
// it must never panic, and every endpoint it accepts must be a host:port
// that splits back into the record's target and port.
func FuzzSRVAnswer(f *testing.F) {
	f.Add(srvAnswer(f, &dns.SRV{Port: 2379, Target: "infra0.example.test."}), false)
	f.Add(srvAnswer(f,
		&dns.SRV{Priority: 0, Weight: 10, Port: 2379, Target: "a.example.test."},
		&dns.SRV{Priority: 1, Weight: 0, Port: 2380, Target: "B.Example.Test."}), true)
	f.Add(srvAnswer(f, &dns.SRV{Port: 0, Target: "zero.example.test."}), false)
	f.Add(srvAnswer(f, &dns.SRV{Port: 2379, Target: "."}), true)
	f.Add(srvAnswer(f, &dns.SRV{Port: 2379, Target: "::1."}), false)
	f.Add([]byte{0, 1, 2, 3}, false)

	f.Fuzz(func(t *testing.T, data []byte, isTLS bool) {
		m := new(dns.Msg)
		if err := m.Unpack(data); err != nil {
			return
		}
		for _, rr := range m.Answer {
			srv, ok := rr.(*dns.SRV)
			if !ok {
				continue
			}
			ep, reason := endpointOf(srv, isTLS)
			if ep.TLS != isTLS || ep.Priority != srv.Priority || ep.Weight != srv.Weight {
				t.Fatalf("record %v became %+v", srv, ep)
			}
			if reason != "" {
				continue
			}
			host, port, err := net.SplitHostPort(ep.Addr)
			if err != nil {
				t.Fatalf("record %v became %q, which is no host:port: %v", srv, ep.Addr, err)
			}
			if host == "" || strings.HasSuffix(host, ".") || host != strings.ToLower(host) {
				t.Fatalf("record %v became host %q", srv, host)
			}
			if port != strconv.Itoa(int(srv.Port)) || srv.Port == 0 {
				t.Fatalf("record %v became port %q", srv, port)
			}
		}
	})
}
