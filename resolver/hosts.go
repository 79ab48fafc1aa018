package resolver

import (
	"context"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// MinRefresh is the shortest time between two lookups of a name, whatever
// its TTL says.
const MinRefresh = time.Second

// failureLogEvery is how often a name whose lookups keep failing is
// logged again after its first failure.
const failureLogEvery = time.Minute

// Hosts resolves the host names the gateway dials (static endpoints, SRV
// targets, members found by member sync) in the background and keeps
// their last good addresses, so that a dial never waits for DNS and a DNS
// outage never fails a dial. A failed lookup keeps the addresses; only an
// answer that the name has none (NXDOMAIN, or no A or AAAA record) drops
// them. Each name is asked again when its TTL runs out, within its
// HostLimits' [MinRefresh, Refresh], a little early at random so that many
// gateways don't ask in step; failures are retried with backoff.
//
// One Hosts serves all the listeners of a gateway, which share dns-server.
// Its methods are safe for concurrent use.
type Hosts struct {
	q        querier
	log      logrus.FieldLogger
	onChange func(name string)
	ctx      context.Context
	cancel   context.CancelFunc
	limits   atomic.Pointer[HostLimits]

	names sync.Map // name -> *host; read lock-free by Dial
	mu    sync.Mutex
}

// HostLimits bound how often names are asked and how long stale answers
// are used; a reload may change them.
type HostLimits struct {
	// Refresh is the longest time between two lookups of a name
	// (dns-refresh); zero means 30s.
	Refresh time.Duration
	// MinRefresh is the shortest; zero means MinRefresh (tests shorten
	// it).
	MinRefresh time.Duration
	// StaleMax, when positive, is how long the last good addresses of a
	// name stay in use while its lookups fail (dns-stale-max); zero keeps
	// them for as long as the lookups fail.
	StaleMax time.Duration
}

// HostsOptions configure a new Hosts.
type HostsOptions struct {
	// DNSServer is dns-server (host:port); empty means the system resolver.
	DNSServer string
	// Timeout bounds each query; zero means DefaultTimeout.
	Timeout time.Duration
	Limits  HostLimits
	Log     logrus.FieldLogger
	// OnChange, when set, is called from a background goroutine after a
	// name's addresses change or it is found gone or back.
	OnChange func(name string)
}

// HostState is what the gateway knows of one host name.
type HostState struct {
	Name string
	// Addrs are the addresses dials use, sorted; empty when the name was
	// never resolved, is gone, or its answer grew older than StaleMax.
	Addrs []netip.Addr
	// ResolvedAt is when the answer in use came; zero when none did.
	ResolvedAt time.Time
	// TTL is the answer's smallest TTL; 0 when the resolver hides it.
	TTL time.Duration
	// Pending is true until the first lookup ends.
	Pending bool
	// Gone is true when the last answer said the name has no address.
	Gone bool
	// Failing is true when the last lookup got no answer.
	Failing bool
	// Expired is true when Addrs were dropped by StaleMax.
	Expired bool
	// LastError is the error of the last failed lookup, at LastErrorAt;
	// it stays after a success, for the record.
	LastError   string
	LastErrorAt time.Time
	// FailingSince is when the current run of failures began.
	FailingSince time.Time
	// Lookups and Failures count the lookups of the name.
	Lookups, Failures uint64
}

// host is one tracked name and its refresh loop.
type host struct {
	name   string
	state  atomic.Pointer[HostState]
	first  chan struct{} // closed when the first lookup ends, or the loop
	once   sync.Once     // closes first
	cancel context.CancelFunc
	// Touched by the refresh loop only.
	streak   int // failed lookups in a row
	lastWarn time.Time
}

// NewHosts returns a Hosts tracking no name; Close stops it.
func NewHosts(o HostsOptions) *Hosts {
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hosts{q: querier{server: o.DNSServer, timeout: o.Timeout}, log: o.Log, onChange: o.OnChange, ctx: ctx, cancel: cancel}
	if h.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		h.log = l
	}
	h.SetLimits(o.Limits)
	return h
}

// DNSServer is the server the names are asked of; empty for the system
// resolver.
func (h *Hosts) DNSServer() string { return h.q.server }

// SetLimits applies new limits from each name's next lookup on.
func (h *Hosts) SetLimits(l HostLimits) {
	if l.Refresh <= 0 {
		l.Refresh = 30 * time.Second
	}
	if l.MinRefresh <= 0 {
		l.MinRefresh = MinRefresh
	}
	h.limits.Store(&l)
}

// Close stops every refresh loop.
func (h *Hosts) Close() { h.cancel() }

// IsName reports whether host is a name to resolve, not an IP address.
func IsName(host string) bool {
	_, err := netip.ParseAddr(host)
	return err != nil && host != ""
}

// Resolve tracks names and returns the state of each once its first
// lookup has ended, or as it is when ctx ends first. A name tracked
// already is not asked again: its state is returned as it is.
func (h *Hosts) Resolve(ctx context.Context, names []string) []HostState {
	out := make([]HostState, len(names))
	for i, n := range names {
		out[i] = h.await(ctx, h.track(n))
	}
	return out
}

// Track starts resolving names in the background; it does not wait.
func (h *Hosts) Track(names ...string) {
	for _, n := range names {
		h.track(n)
	}
}

// Retain stops tracking every name that keep rejects.
func (h *Hosts) Retain(keep func(name string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names.Range(func(k, v any) bool {
		if !keep(k.(string)) {
			v.(*host).cancel()
			h.names.Delete(k)
		}
		return true
	})
}

// State returns what is known of name, tracked or not.
func (h *Hosts) State(name string) (HostState, bool) {
	if v, ok := h.names.Load(strings.ToLower(name)); ok {
		return *v.(*host).state.Load(), true
	}
	return HostState{}, false
}

// track returns the entry of name, starting its refresh loop when new.
func (h *Hosts) track(name string) *host {
	name = strings.ToLower(name)
	if v, ok := h.names.Load(name); ok {
		return v.(*host)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.names.Load(name); ok {
		return v.(*host)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	e := &host{name: name, first: make(chan struct{}), cancel: cancel}
	e.state.Store(&HostState{Name: name, Pending: true})
	h.names.Store(name, e)
	go h.run(ctx, e)
	return e
}

// await returns e's state once its first lookup has ended or ctx is done.
func (h *Hosts) await(ctx context.Context, e *host) HostState {
	select {
	case <-e.first:
	case <-ctx.Done():
	}
	return *e.state.Load()
}

// run looks e's name up until ctx is done.
func (h *Hosts) run(ctx context.Context, e *host) {
	defer e.once.Do(func() { close(e.first) })
	for {
		ans, err := h.q.lookupHost(ctx, e.name)
		if ctx.Err() != nil {
			return
		}
		delay := h.record(e, ans, err)
		e.once.Do(func() { close(e.first) })
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// record stores the outcome of one lookup of e, logs what an operator
// should know, tells OnChange, and returns the time until the next lookup.
func (h *Hosts) record(e *host, ans hostAnswer, err error) time.Duration {
	old := e.state.Load()
	st := *old
	st.Pending = false
	st.Lookups++
	lim := *h.limits.Load()
	var delay time.Duration
	if err != nil {
		h.failed(e, &st, err, lim)
		delay = backoff(e.streak, lim.MinRefresh, lim.Refresh)
	} else {
		h.answered(e, &st, ans)
		delay = refreshDelay(ans.ttl, lim.MinRefresh, lim.Refresh)
	}
	e.state.Store(&st)
	if h.onChange != nil && (old.Gone != st.Gone || !slices.Equal(old.Addrs, st.Addrs)) {
		h.onChange(e.name)
	}
	return delay
}

// failed updates st after a lookup that got no answer: the addresses stay,
// unless they are older than lim.StaleMax.
func (h *Hosts) failed(e *host, st *HostState, err error, lim HostLimits) {
	now := time.Now()
	e.streak++
	st.Failures++
	st.LastError, st.LastErrorAt = err.Error(), now
	if !st.Failing {
		st.Failing, st.FailingSince = true, now
	}
	log := h.log.WithFields(logrus.Fields{"name": e.name, "error": st.LastError, "addresses": addrStrings(st.Addrs), "source": "dns"})
	if lim.StaleMax > 0 && len(st.Addrs) > 0 && now.Sub(st.ResolvedAt) > lim.StaleMax {
		st.Addrs, st.Expired = nil, true
		log.WithField("dns-stale-max", lim.StaleMax.String()).Error("DNS lookups keep failing and the last answer is older than dns-stale-max: its addresses are no longer used")
		e.lastWarn = now
		return
	}
	switch {
	case e.streak == 1 && len(st.Addrs) > 0:
		log.Warn("DNS lookup failed; keeping the last good addresses")
	case e.streak == 1:
		log.Warn("DNS lookup failed; the name has no address yet, dials to it fail until a lookup succeeds")
	case now.Sub(e.lastWarn) < failureLogEvery:
		return
	default:
		log.WithFields(logrus.Fields{"failures": e.streak, "since": st.FailingSince.Format(time.RFC3339)}).Warn("DNS lookups still failing")
	}
	e.lastWarn = now
}

// answered updates st after a lookup that got an answer.
func (h *Hosts) answered(e *host, st *HostState, ans hostAnswer) {
	log := h.log.WithFields(logrus.Fields{"name": e.name, "addresses": addrStrings(ans.addrs), "source": "dns"})
	if st.Failing {
		log.WithFields(logrus.Fields{"failures": e.streak, "outage": time.Since(st.FailingSince).Round(time.Millisecond).String()}).Info("DNS lookups succeed again")
	}
	switch {
	case ans.gone && !st.Gone:
		log.Warn("DNS says the name has no address (NXDOMAIN or no A/AAAA record): its endpoint is removed")
	case !ans.gone && st.Gone:
		log.Info("DNS has addresses for the name again")
	case !ans.gone && st.Lookups > 1 && !slices.Equal(st.Addrs, ans.addrs):
		log.WithField("old-addresses", addrStrings(st.Addrs)).Info("DNS answer changed: new connections use the new addresses")
	}
	e.streak = 0
	st.Failing, st.Expired, st.FailingSince = false, false, time.Time{}
	st.Gone, st.Addrs, st.TTL, st.ResolvedAt = ans.gone, ans.addrs, ans.ttl, time.Now()
}

// refreshDelay is the time until a name answered with ttl is asked again:
// ttl clamped to [floor, ceiling] (ceiling when ttl is unknown), up to a
// tenth earlier at random, so that gateways started together drift apart.
func refreshDelay(ttl, floor, ceiling time.Duration) time.Duration {
	d := ttl
	if d <= 0 || d > ceiling {
		d = ceiling
	}
	d = max(d, floor)
	return d - rand.N(d/10+1)
}

// backoff is the time until a name whose lookups failed n times in a row
// is asked again: floor doubling, up to ceiling, with the same jitter.
func backoff(n int, floor, ceiling time.Duration) time.Duration {
	return refreshDelay(floor<<min(n-1, 16), floor, ceiling)
}

func addrStrings(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
