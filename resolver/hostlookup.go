package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// hostAnswer is what one lookup of a host name found.
type hostAnswer struct {
	// addrs are the name's addresses, sorted (IPv4 first) so that a
	// server that rotates its records doesn't look like a change.
	addrs []netip.Addr
	// ttl is the smallest TTL of the records; 0 when unknown (the system
	// resolver does not tell).
	ttl time.Duration
	// gone is true when a server answered that the name has no address:
	// NXDOMAIN, or NOERROR without A or AAAA records.
	gone bool
}

// lookupHost asks for name's A and AAAA records. The error is set only
// when no answer came (a timeout, a refusal, SERVFAIL, garbage): that says
// nothing about the name, unlike an answer without addresses (gone).
func (q querier) lookupHost(ctx context.Context, name string) (hostAnswer, error) {
	if q.server == "" {
		return q.lookupSystem(ctx, name)
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA}
	msgs := make([]*dns.Msg, len(types))
	errs := make([]error, len(types))
	var wg sync.WaitGroup
	for i, t := range types {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs[i], errs[i] = q.ask(ctx, name, t)
		}()
	}
	wg.Wait()
	return hostAnswerOf(msgs, errs)
}

// hostAnswerOf combines the A and AAAA answers: any address is an answer
// (the other query may have failed); no address is gone only when both
// queries were answered.
func hostAnswerOf(msgs []*dns.Msg, errs []error) (hostAnswer, error) {
	var ans hostAnswer
	var rrs []dns.RR
	for _, m := range msgs {
		if m == nil {
			continue
		}
		for _, rr := range m.Answer {
			if ip, ok := addrOf(rr); ok {
				ans.addrs = append(ans.addrs, ip)
				rrs = append(rrs, rr)
			}
		}
	}
	if len(ans.addrs) > 0 {
		slices.SortFunc(ans.addrs, netip.Addr.Compare)
		ans.addrs = slices.Compact(ans.addrs)
		ans.ttl = minTTL(rrs)
		return ans, nil
	}
	if err := errors.Join(errs...); err != nil {
		return hostAnswer{}, joinErrs(slices.DeleteFunc(errs, func(e error) bool { return e == nil }))
	}
	return hostAnswer{gone: true, ttl: negativeTTL(msgs)}, nil
}

// negativeTTL is how long the answers that a name has no address may be
// cached (RFC 2308: the SOA record of the authority section, the smaller
// of its TTL and MINIMUM); 0 when they carry no SOA.
func negativeTTL(msgs []*dns.Msg) time.Duration {
	var least time.Duration
	for _, m := range msgs {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl := time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
				if least == 0 || ttl < least {
					least = ttl
				}
			}
		}
	}
	return least
}

// addrOf returns the address of an A or AAAA record.
func addrOf(rr dns.RR) (netip.Addr, bool) {
	var ip net.IP
	switch r := rr.(type) {
	case *dns.A:
		ip = r.A
	case *dns.AAAA:
		ip = r.AAAA
	default:
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// lookupSystem asks the system resolver (/etc/hosts, then the servers of
// /etc/resolv.conf), which hides the TTL: the name is asked again every
// refresh interval.
func (q querier) lookupSystem(ctx context.Context, name string) (hostAnswer, error) {
	timeout := q.timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return hostAnswer{gone: true}, nil
	}
	if err != nil {
		return hostAnswer{}, err
	}
	for i, ip := range ips {
		ips[i] = ip.Unmap()
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return hostAnswer{addrs: slices.Compact(ips)}, nil
}
