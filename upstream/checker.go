package upstream

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"

	"github.com/sirupsen/logrus"
)

// Checkers is a registry of health checkers shared by pools, so that
// listeners in front of the same members check each member once: a hundred
// listeners in front of three members hold three check connections, not
// three hundred. A checker is shared by the endpoints whose checks would
// be the same (checkKey) and stops when the last one lets go of it. Every
// checker of a registry dials with the registry's dial function, so the
// pools that share a registry must dial the same way (a reconcile.Group's
// pools all dial through its name cache).
type Checkers struct {
	dial DialFunc
	log  logrus.FieldLogger

	mu    sync.Mutex
	byKey map[checkKey]*checker
}

// NewCheckers returns an empty registry whose checkers dial with dial (nil
// means a net.Dialer) and log to log (nil discards) what concerns the
// member rather than a pool: a check that falls back to a handshake.
func NewCheckers(dial DialFunc, log logrus.FieldLogger) *Checkers {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	if log == nil {
		log = discardLog()
	}
	return &Checkers{dial: dial, log: log, byKey: map[checkKey]*checker{}}
}

// checkKey is what makes two checks the same check: the member's address,
// the check settings, and the TLS settings used to talk to it, with
// whether the gateway originates TLS (then a refused check never falls
// back to a handshake). Checks of one registry dial the same way.
type checkKey struct {
	addr      string
	hc        HealthCheck
	tls       endpointTLS
	originate bool
}

// acquire returns the checker for key with one more reference, started
// when it is new. A new checker starts from seed's verdict and schedule
// (the checker the endpoint leaves, when a reload changed its settings),
// or afresh when seed is nil.
func (cs *Checkers) acquire(key checkKey, seed *checker) *checker {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.byKey[key]; ok {
		c.refs++
		return c
	}
	c := &checker{key: key, dial: cs.dial, log: cs.log, refs: 1, healthy: true, subs: map[*Endpoint]statusSetter{}}
	if key.hc.Type == config.CheckEtcd {
		c.client = &http.Client{Transport: checkTransport(cs.dial, key.tls.config())}
		c.suspect.client = &http.Client{Transport: checkTransport(cs.dial, key.tls.config())}
	}
	due := c.seedFrom(seed)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	cs.byKey[key] = c
	go c.run(ctx, due)
	return c
}

// release drops a reference to c; the last one stops it.
func (cs *Checkers) release(c *checker) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c.refs--; c.refs > 0 {
		return
	}
	delete(cs.byKey, c.key)
	c.cancel()
	if c.client != nil {
		c.client.CloseIdleConnections()
		c.suspect.client.CloseIdleConnections()
	}
}

// statusSetter is how a checker talks to a pool: it hands each result of
// an endpoint's checks, with the shared verdict, and the pool acts on it.
// It is called with the checker's lock held, so that a verdict never lands
// after the endpoint stopped listening (unsubscribe).
type statusSetter interface {
	setStatus(ep *Endpoint, v verdict)
}

// verdict is one check result and the verdict it leaves.
type verdict struct {
	// healthy is the shared verdict: fall failures in a row made it
	// false, rise successes in a row true.
	healthy bool
	// streak counts the latest results: n > 0 is n successes in a row, n < 0
	// is -n failures in a row.
	streak int
	// reason is why the last check failed; "" when it passed.
	reason string
	// fresh says that the verdict comes from a check that just ran, not
	// from an endpoint joining a running checker.
	fresh bool
	hc    HealthCheck
	// facts are what the etcd check knows of the member besides.
	facts memberFacts
}

// checker runs the health checks of one member for every endpoint of
// every pool that shares its key.
type checker struct {
	key    checkKey
	dial   DialFunc
	log    logrus.FieldLogger
	client *http.Client // for the etcd check; nil otherwise
	cancel context.CancelFunc
	// refs counts the endpoints using the checker. Guarded by the
	// registry's mu.
	refs int
	// fellBack is set once the etcd check of a TLS member falls back to a
	// handshake: the member refused it for a reason of the gateway's
	// configuration. Only the checker's goroutine writes it.
	fellBack atomic.Bool
	// next is what the running round learned of the member, for record.
	// Only the checker's goroutine touches it.
	next memberFacts
	// statusWanted is until when a pool wants the member's Status every
	// round (catchup.go), rpcsWanted its client RPCs (fill.go).
	statusWanted, rpcsWanted wantedUntil
	// suspect is the check on suspicion's state (suspect.go).
	suspect suspicion

	mu sync.Mutex
	// streak, healthy and reason make the verdict; checked says that a
	// result was counted; lastStart is when the last check of the
	// interval started (not one on suspicion, which leaves the schedule).
	streak    int
	healthy   bool
	reason    string
	checked   bool
	lastStart time.Time
	subs      map[*Endpoint]statusSetter
	// facts are what the etcd check knows of the member beside the
	// verdict. The checker's goroutine reads them without the lock: it is
	// the only writer.
	facts memberFacts
}

// seedFrom copies seed's verdict into the new checker c and returns when
// its first check is due: at once without a seed, else an interval after
// seed's last check, so that a reload applies from the next check.
func (c *checker) seedFrom(seed *checker) time.Time {
	if seed == nil {
		return time.Now()
	}
	seed.mu.Lock()
	defer seed.mu.Unlock()
	c.streak, c.healthy, c.reason, c.checked = seed.streak, seed.healthy, seed.reason, seed.checked
	c.facts = seed.facts
	return seed.lastStart.Add(c.key.hc.Interval)
}

// run checks the member every interval, from due, until ctx is done; the
// sweep checks on suspicion beside it (suspect.go).
func (c *checker) run(ctx context.Context, due time.Time) {
	if c.key.hc.suspects() {
		go c.sweep(ctx)
	}
	for sleepUntil(ctx, due) {
		due = c.nextDue(c.checkRound(ctx))
	}
}

// checkRound runs one check, records its result and returns when it
// started.
func (c *checker) checkRound(ctx context.Context) time.Time {
	start := time.Now()
	err := c.checkOnce(ctx, c.key.hc.Timeout)
	c.record(ctx, start, err)
	return start
}

// sleepUntil waits until t and reports whether ctx is still live.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// record counts one check result into the streak, updates the verdict as
// fall and rise say, and hands it to every endpoint of the checker.
func (c *checker) record(ctx context.Context, start time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() != nil {
		return // stopped meanwhile: the verdict is stale
	}
	c.lastStart = start
	c.checked = true
	c.count(err == nil)
	c.facts = c.next
	if c.facts.leaderlessLong {
		c.healthy = false // leaderless-max: whatever fall says
	}
	c.reason = ""
	if err != nil {
		c.reason = err.Error()
	} else {
		c.cleared(start)
	}
	v := c.verdictLocked(true)
	for ep, s := range c.subs {
		ep.timings.observeCheck(start, err)
		s.setStatus(ep, v)
	}
}

// count adds one result to the streak and moves the verdict when the
// streak reaches rise or fall. The caller holds mu.
func (c *checker) count(ok bool) {
	switch {
	case ok && c.streak < 0:
		c.streak = 1
	case ok:
		c.streak++
	case c.streak > 0:
		c.streak = -1
	default:
		c.streak--
	}
	if ok && c.streak >= c.key.hc.Rise {
		c.healthy = true
	} else if !ok && -c.streak >= c.key.hc.Fall {
		c.healthy = false
	}
}

func (c *checker) verdictLocked(fresh bool) verdict {
	return verdict{healthy: c.healthy, streak: c.streak, reason: c.reason, fresh: fresh, hc: c.key.hc, facts: c.facts}
}

// subscribe makes s hear the verdicts about ep, starting with the current
// one when the checker has one: an endpoint that joins a running checker
// takes its verdict at once.
func (c *checker) subscribe(ep *Endpoint, s statusSetter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[ep] = s
	if c.checked {
		s.setStatus(ep, c.verdictLocked(false))
	}
}

// unsubscribe stops the verdicts about ep; none lands after it returns.
func (c *checker) unsubscribe(ep *Endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, ep)
}

// endSuccessRun forgets a run of successful checks: a dial to the member
// failed, so it needs rise new successes to be re-activated, in every pool
// (a failed dial marks the endpoint down only in its own pool, and the
// others' verdict stays, as a positive streak only moves it up).
func (c *checker) endSuccessRun() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streak = min(c.streak, 0)
}

// wantedUntil is until when (Unix nanoseconds) some pool wants a question
// asked every round beyond the steady one. Pools share a checker, so a
// shorter want never cuts a longer one.
type wantedUntil struct{ atomic.Int64 }

func (w *wantedUntil) extend(until time.Time) {
	t := until.UnixNano()
	for old := w.Load(); old < t && !w.CompareAndSwap(old, t); old = w.Load() {
	}
}

func (w *wantedUntil) now() bool { return time.Now().UnixNano() < w.Load() }
