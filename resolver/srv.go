package resolver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// DefaultTimeout bounds each DNS query and each TLS validation handshake
// when SRV.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// resolvConf is where the system's DNS servers are read from when no
// dns-server is set.
const resolvConf = "/etc/resolv.conf"

// ErrNoEndpoints is returned by Resolve when discovery yields no usable
// endpoint: neither SRV name answered with records, or every record was
// dropped.
var ErrNoEndpoints = errors.New("no usable endpoint")

// SRV is the DNS SRV discovery of one etcd cluster, as etcd does it: the
// records of _etcd-client-ssl._tcp.DOMAIN (TLS members) and
// _etcd-client._tcp.DOMAIN (plain members), or, with a Name,
// _etcd-client-ssl-NAME._tcp.DOMAIN and _etcd-client-NAME._tcp.DOMAIN.
type SRV struct {
	// Domain is the discovery domain (discovery-srv).
	Domain string
	// Name is the optional service name suffix (discovery-srv-name).
	Name string
	// Insecure (insecure-discovery) accepts every record, plain ones
	// included, without validation. Otherwise plain _etcd-client records
	// are dropped and each _etcd-client-ssl endpoint must pass a TLS
	// handshake whose certificate verifies for Domain.
	Insecure bool
	// TrustedCAFile is the PEM file of the CA certificates that validate
	// TLS endpoints; empty means the system roots.
	TrustedCAFile string
	// DNSServer is the host:port of the DNS server for the SRV queries and
	// for the targets' addresses; empty means the servers of
	// /etc/resolv.conf.
	DNSServer string
	// Timeout bounds each DNS query and each TLS handshake; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Hosts, when set, resolves the targets' names for the TLS
	// validation, so that the running gateway's cache learns them; nil
	// means a lookup at each dial, as `check` does.
	Hosts *Hosts
}

// FromConfig returns the SRV discovery of listener l, which must have
// discovery-srv set, with the snapshot's dns-server.
func FromConfig(dnsServer string, l config.Listener) SRV {
	return SRV{
		Domain:        l.DiscoverySRV,
		Name:          l.DiscoverySRVName,
		Insecure:      l.InsecureDiscovery,
		TrustedCAFile: l.TrustedCAFile,
		DNSServer:     dnsServer,
	}
}

// Names returns the two SRV names queried: the TLS one and the plain one.
func (s SRV) Names() (tlsName, plainName string) {
	suffix := ""
	if s.Name != "" {
		suffix = "-" + s.Name
	}
	domain := s.domain()
	return "_etcd-client-ssl" + suffix + "._tcp." + domain, "_etcd-client" + suffix + "._tcp." + domain
}

// domain is Domain without a trailing dot.
func (s SRV) domain() string { return strings.TrimSuffix(s.Domain, ".") }

func (s SRV) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// Result is what one resolution found.
type Result struct {
	// Endpoints are the usable endpoints, ordered by priority then
	// address. TLS is set on those from the _etcd-client-ssl name.
	Endpoints []Endpoint
	// Lookups are the two SRV queries, the TLS name first.
	Lookups []Lookup
	// Dropped are the records that were found but not used, with why.
	Dropped []Dropped
}

// Unreachable reports whether no SRV name got an answer: DNS could not be
// asked (every query timed out, was refused or failed), which says nothing
// about the cluster, unlike NXDOMAIN or an empty answer.
func (r Result) Unreachable() bool {
	for _, l := range r.Lookups {
		if l.Err == nil {
			return false
		}
	}
	return len(r.Lookups) > 0
}

// TTL is the smallest TTL of the records found, or 0 when none was.
func (r Result) TTL() time.Duration {
	var least time.Duration
	for _, l := range r.Lookups {
		if l.Records > 0 && (least == 0 || l.TTL < least) {
			least = l.TTL
		}
	}
	return least
}

// Queried returns the SRV names that were queried.
func (r Result) Queried() []string {
	out := make([]string, len(r.Lookups))
	for i, l := range r.Lookups {
		out[i] = l.Name
	}
	return out
}

// Lookup is the outcome of the query of one SRV name.
type Lookup struct {
	// Name is the SRV name queried, without a trailing dot.
	Name string
	// TLS is true for the _etcd-client-ssl name.
	TLS bool
	// Records is the number of SRV records in the answer.
	Records int
	// NXDomain is true when the server answered that the name does not
	// exist.
	NXDomain bool
	// Err is set when no server gave an answer: a network error, a
	// timeout, or a failure code such as SERVFAIL. NXDOMAIN and an answer
	// without records are answers, not errors.
	Err error
	// TTL is the smallest TTL of the records found.
	TTL time.Duration
}

// String describes the outcome: "2 records", "NXDOMAIN", "no SRV
// records" or the error.
func (l Lookup) String() string {
	switch {
	case l.Err != nil:
		return "failed: " + l.Err.Error()
	case l.NXDomain:
		return "NXDOMAIN (no such name)"
	case l.Records == 0:
		return "no SRV records"
	case l.Records == 1:
		return "1 record"
	default:
		return fmt.Sprintf("%d records", l.Records)
	}
}

// Dropped is a discovered record that is not used, and why.
type Dropped struct {
	// Addr is the record's host:port, or its raw target when it has none.
	Addr string
	// TLS is true when the record came from the _etcd-client-ssl name.
	TLS bool
	// Reason says why the record is not used.
	Reason string
}

// Resolve queries both SRV names and returns the endpoints found: the
// union of both answers, after validation (see SRV.Insecure). The error is
// nil when at least one endpoint is usable; otherwise it wraps
// ErrNoEndpoints and says which names were queried, what each returned and
// why records were dropped. The Result is filled in either case.
func (s SRV) Resolve(ctx context.Context) (Result, error) {
	tlsName, plainName := s.Names()
	res := Result{Lookups: []Lookup{{Name: tlsName, TLS: true}, {Name: plainName}}}
	answers := make([][]*dns.SRV, len(res.Lookups))
	var wg sync.WaitGroup
	for i := range res.Lookups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = s.lookup(ctx, &res.Lookups[i])
		}()
	}
	wg.Wait()

	var candidates []Endpoint
	seen := map[string]bool{}
	for i, rrs := range answers {
		isTLS := res.Lookups[i].TLS
		for _, rr := range rrs {
			ep, reason := endpointOf(rr, isTLS)
			switch {
			case reason != "":
			case seen[ep.Addr]:
				reason = "listed more than once: the first record is used"
			case !isTLS && !s.Insecure:
				reason = "plain _etcd-client record: not trusted without insecure-discovery"
			}
			if reason != "" {
				res.Dropped = append(res.Dropped, Dropped{Addr: ep.Addr, TLS: isTLS, Reason: reason})
				continue
			}
			seen[ep.Addr] = true
			candidates = append(candidates, ep)
		}
	}

	if s.Insecure || len(candidates) == 0 {
		res.Endpoints = candidates
	} else {
		var err error
		res.Endpoints, err = s.validateAll(ctx, candidates, &res)
		if err != nil {
			return res, fmt.Errorf("discovery-srv %q: %w", s.Domain, err)
		}
	}
	sortEndpoints(res.Endpoints)
	slices.SortStableFunc(res.Dropped, func(a, b Dropped) int { return strings.Compare(a.Addr, b.Addr) })
	if len(res.Endpoints) == 0 {
		return res, s.noEndpoints(res)
	}
	return res, nil
}

// sortEndpoints orders eps by priority, then address.
func sortEndpoints(eps []Endpoint) {
	slices.SortFunc(eps, func(a, b Endpoint) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.Addr, b.Addr))
	})
}

// noEndpoints is the error of a resolution that found nothing usable.
func (s SRV) noEndpoints(res Result) error {
	var b strings.Builder
	for i, l := range res.Lookups {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", l.Name, l)
	}
	for _, d := range res.Dropped {
		fmt.Fprintf(&b, "; dropped %s: %s", d.Addr, d.Reason)
	}
	return fmt.Errorf("%w for discovery-srv %q: queried %s", ErrNoEndpoints, s.Domain, b.String())
}

// endpointOf turns an SRV record into an endpoint, or says why it can't.
func endpointOf(rr *dns.SRV, isTLS bool) (Endpoint, string) {
	// Names are case-insensitive: one spelling keeps an endpoint's
	// identity in its pool from one answer to the next.
	target := strings.ToLower(strings.TrimSuffix(rr.Target, "."))
	ep := Endpoint{Priority: rr.Priority, Weight: rr.Weight, TLS: isTLS}
	if target == "" {
		ep.Addr = rr.Target
		return ep, `target "." means the service is not available at this name (RFC 2782)`
	}
	ep.Addr = net.JoinHostPort(target, strconv.Itoa(int(rr.Port)))
	if !dialable(target) {
		return ep, fmt.Sprintf("target %q is neither a host name nor an IP address", rr.Target)
	}
	if rr.Port == 0 {
		return ep, "port 0"
	}
	return ep, ""
}

// dialable reports whether target (lower case, without the final dot) is
// something a dial can take: an IP address, or a host name of letters,
// digits, hyphens, underscores and dots. A DNS name may hold any byte
// (miekg/dns writes "]" or "\032" into the target as they come), and such a
// name would make an address that no dial, and no status page, can parse.
func dialable(target string) bool {
	if _, err := netip.ParseAddr(target); err == nil {
		return true
	}
	for _, c := range []byte(target) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// lookup queries l.Name's SRV records from each server in turn until one
// answers, records the outcome in l and returns the records.
func (s SRV) lookup(ctx context.Context, l *Lookup) []*dns.SRV {
	r, err := s.querier().ask(ctx, l.Name, dns.TypeSRV)
	if err != nil {
		l.Err = err
		return nil
	}
	if r.Rcode == dns.RcodeNameError {
		l.NXDomain = true
		return nil
	}
	var out []*dns.SRV
	for _, rr := range r.Answer {
		if srv, ok := rr.(*dns.SRV); ok {
			out = append(out, srv)
		}
	}
	l.Records = len(out)
	l.TTL = minTTL(r.Answer)
	return out
}

func (s SRV) querier() querier { return querier{server: s.DNSServer, timeout: s.timeout()} }

// joinErrs joins errs on one line, for logs and check's output.
func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}
