// Package dnstest runs a real DNS server on loopback, with
// github.com/miekg/dns, for the tests: it serves SRV, A and AAAA records
// that a test may change at any time, and can be made to fail. It is never
// linked into the gateway binary.
package dnstest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/etcd-gateway/etcd-gateway/internal/loopback"
)

// SRV is one SRV record's data.
type SRV struct {
	Priority, Weight, Port uint16
	// Target is a host name; a trailing dot is added when missing.
	Target string
}

// Server is an authoritative DNS server on 127.0.0.1, over UDP and TCP on
// the same port. A name it has no record of any type for gets NXDOMAIN; a
// name with records of other types, or set with no records, gets an empty
// answer (NOERROR, no data).
type Server struct {
	// Addr is the server's host:port, for dns-server.
	Addr string

	udp, tcp *dns.Server
	// holds keep the port, UDP and TCP, until Close.
	holds []*loopback.Hold

	mu     sync.Mutex
	srv    map[string][]SRV
	addrs  map[string][]net.IP
	rcode  int            // when not success, every query gets it
	failed map[string]int // per name: the rcode its queries get
	// garbage, when set, is what every query gets instead of an answer.
	garbage Garbage
	// silent makes the server read queries and never answer.
	silent bool

	queries atomic.Int64
}

// Start starts a server with no records. Its port, UDP and TCP, stays
// held (loopback) until Close, so that a Restart after Stop binds it
// again and nothing else takes it meanwhile: the resolver under test sends
// its queries from ephemeral UDP ports, any of which could be it.
func Start() (*Server, error) {
	var lastErr error
	for range 20 {
		holds, err := holdBoth()
		if err != nil {
			lastErr = err
			continue
		}
		s := &Server{
			Addr:   holds[0].Addr(),
			holds:  holds,
			srv:    map[string][]SRV{},
			addrs:  map[string][]net.IP{},
			rcode:  dns.RcodeSuccess,
			failed: map[string]int{},
		}
		if err := s.Restart(); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("dnstest: no port free for both udp and tcp: %w", lastErr)
}

// holdBoth holds a TCP port and the same UDP port.
func holdBoth() ([]*loopback.Hold, error) {
	tcp, err := loopback.Reserve("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	udp, err := loopback.ReserveUDP(tcp.Addr())
	if err != nil {
		_ = tcp.Close()
		return nil, fmt.Errorf("dnstest: %w", err)
	}
	return []*loopback.Hold{tcp, udp}, nil
}

// serve starts both servers and returns once they accept queries.
func (s *Server) serve() error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, srv := range []*dns.Server{s.udp, s.tcp} {
		wg.Add(1)
		var once sync.Once
		srv.NotifyStartedFunc = func() { once.Do(wg.Done) }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				errs[i] = err
				once.Do(wg.Done)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Stop()
		return fmt.Errorf("dnstest: serve: %w", err)
	}
	return nil
}

// Stop stops the server; later queries get no answer.
func (s *Server) Stop() {
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if srv != nil {
			_ = srv.Shutdown()
		}
	}
}

// Restart serves again on the same address after Stop, with the same
// records.
func (s *Server) Restart() error {
	pc, err := loopback.ListenUDP(s.Addr)
	if err != nil {
		return fmt.Errorf("dnstest: listen udp: %w", err)
	}
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		_ = pc.Close()
		return fmt.Errorf("dnstest: listen tcp: %w", err)
	}
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: l, Handler: s}
	return s.serve()
}

// Close stops the server and lets its port go.
func (s *Server) Close() {
	s.Stop()
	loopback.CloseAll(s.holds)
}

// SetSilent makes the server read every later query and never answer (a
// server that is up but does not respond), or answer again.
func (s *Server) SetSilent(silent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.silent = silent
}

// Queries is the number of queries the server has received.
func (s *Server) Queries() int64 { return s.queries.Load() }

func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// SetSRV replaces the SRV records of name. With no records, name still
// exists and an SRV query for it gets an empty answer.
func (s *Server) SetSRV(name string, records ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[key(name)] = append([]SRV{}, records...)
}

// SetAddr replaces the A and AAAA records of name with ips.
func (s *Server) SetAddr(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.IP
	for _, ip := range ips {
		out = append(out, net.ParseIP(ip))
	}
	s.addrs[key(name)] = out
}

// Delete removes every record of name: queries for it get NXDOMAIN.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.srv, key(name))
	delete(s.addrs, key(name))
}

// SetRcode makes queries get rcode, such as dns.RcodeServerFailure: the
// queries for names, or every query when no name is given.
// dns.RcodeSuccess serves the records again.
func (s *Server) SetRcode(rcode int, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(names) == 0 {
		s.rcode = rcode
		clear(s.failed)
		return
	}
	for _, n := range names {
		if rcode == dns.RcodeSuccess {
			delete(s.failed, key(n))
		} else {
			s.failed[key(n)] = rcode
		}
	}
}

// Garbage is a way of answering badly.
type Garbage int

// The bad answers a Server can give.
const (
	NoGarbage Garbage = iota
	// RandomBytes answers with bytes that are no DNS message.
	RandomBytes
	// WrongID answers correctly but under another message ID.
	WrongID
	// WrongType answers SRV queries with A records.
	WrongType
)

// SetGarbage makes every later query get g instead of a proper answer.
func (s *Server) SetGarbage(g Garbage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.garbage = g
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	resp := s.answer(req)
	s.mu.Lock()
	g, silent := s.garbage, s.silent
	s.mu.Unlock()
	if silent {
		return
	}
	switch g {
	case RandomBytes:
		junk := make([]byte, 64)
		_, _ = rand.Read(junk)
		_, _ = w.Write(junk)
		return
	case WrongID:
		resp.Id = req.Id + 1
	case WrongType:
		resp.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 9)}}
	}
	_ = w.WriteMsg(resp)
}

func (s *Server) answer(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rcode != dns.RcodeSuccess {
		return resp.SetRcode(req, s.rcode)
	}
	if len(req.Question) != 1 {
		return resp.SetRcode(req, dns.RcodeFormatError)
	}
	q := req.Question[0]
	name := key(q.Name)
	if rcode, ok := s.failed[name]; ok {
		return resp.SetRcode(req, rcode)
	}
	resp.SetReply(req)
	resp.Authoritative = true
	srvs, hasSRV := s.srv[name]
	ips, hasAddr := s.addrs[name]
	if !hasSRV && !hasAddr {
		resp.Rcode = dns.RcodeNameError
		return resp
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 1}
	}
	switch q.Qtype {
	case dns.TypeSRV:
		for _, r := range srvs {
			resp.Answer = append(resp.Answer, &dns.SRV{
				Hdr: hdr(dns.TypeSRV), Priority: r.Priority, Weight: r.Weight, Port: r.Port,
				Target: dns.Fqdn(r.Target),
			})
		}
	case dns.TypeA:
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: v4})
			}
		}
	case dns.TypeAAAA:
		for _, ip := range ips {
			if ip.To4() == nil {
				resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip})
			}
		}
	}
	return resp
}
