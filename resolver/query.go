package resolver

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// querier asks DNS servers questions: dns-server when set, else the
// servers of /etc/resolv.conf, each in turn until one answers.
type querier struct {
	// server is dns-server (host:port); empty means /etc/resolv.conf.
	server  string
	timeout time.Duration
}

// servers returns the DNS servers to query, as host:port.
func (q querier) servers() ([]string, error) {
	if q.server != "" {
		return []string{q.server}, nil
	}
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("system resolver: %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("system resolver: no nameserver in %s; set dns-server", resolvConf)
	}
	out := make([]string, len(cc.Servers))
	for i, srv := range cc.Servers {
		out[i] = net.JoinHostPort(srv, cc.Port)
	}
	return out, nil
}

// ask sends the question (name, qtype) to each server in turn until one
// gives an answer: NOERROR (with or without records) or NXDOMAIN. Any
// other outcome (a network error, a timeout, a reply that does not parse,
// SERVFAIL, REFUSED) is no answer, and the error lists them all.
func (q querier) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	servers, err := q.servers()
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	var errs []error
	for _, server := range servers {
		r, err := q.exchange(ctx, server, m)
		switch {
		case err != nil:
			errs = append(errs, err)
		case r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeNameError:
			return r, nil
		default:
			errs = append(errs, fmt.Errorf("%s from %s", dns.RcodeToString[r.Rcode], server))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, joinErrs(errs)
}

// exchange sends m to server over UDP, and again over TCP when the answer
// is truncated.
func (q querier) exchange(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	r, err := q.exchangeNet(ctx, "udp", server, m)
	if err == nil && r.Truncated {
		r, err = q.exchangeNet(ctx, "tcp", server, m)
	}
	return r, err
}

func (q querier) exchangeNet(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	timeout := q.timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: timeout}
	co, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("query %s over %s: %w", server, network, err)
	}
	defer co.Close()
	// The client honours the context's deadline but not its cancellation.
	stop := context.AfterFunc(ctx, func() { _ = co.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, co)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("query %s over %s: %w", server, network, err)
	}
	return r, nil
}

// minTTL is the smallest TTL of rrs, or 0 when there are none.
func minTTL(rrs []dns.RR) time.Duration {
	var least uint32
	for i, rr := range rrs {
		if ttl := rr.Header().Ttl; i == 0 || ttl < least {
			least = ttl
		}
	}
	return time.Duration(least) * time.Second
}
