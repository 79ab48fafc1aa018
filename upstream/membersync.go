package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// memberSync follows the cluster's membership for one pool: it asks the
// cluster for its members at once, then every member-sync interval and
// whenever the seed changes, and hands the pool the voting members it
// doesn't have. It knows the pool only through memberPool.
type memberSync struct {
	pool memberPool
	dial DialFunc
	log  logrus.FieldLogger
	// now asks for a round now.
	now chan struct{}
	// rounds counts the rounds that succeeded.
	rounds atomic.Uint64
	// stop stops the running loop; nil when off. Guarded by the pool's
	// updateMu, under which switchTo is called.
	stop context.CancelFunc
}

// memberPool is what member sync needs of its pool.
type memberPool interface {
	// Settings are the pool's settings: the interval, the dial timeout
	// and the TLS to use.
	Settings() Settings
	// candidates returns the endpoints to ask, best first: the configured
	// ones that are up, then the discovered ones that are up, then the
	// rest.
	candidates() []*Endpoint
	// discover makes the voting members that are not configured the
	// pool's discovered set, unless ctx is done, and returns how many
	// that is and whether it did.
	discover(ctx context.Context, members []member) (int, bool)
}

func newMemberSync(pool memberPool, dial DialFunc, log logrus.FieldLogger) *memberSync {
	return &memberSync{pool: pool, dial: dial, log: log, now: make(chan struct{}, 1)}
}

// switchTo starts or stops the loop, a child of ctx, and reports whether
// it stopped one. The caller holds the pool's updateMu.
func (ms *memberSync) switchTo(ctx context.Context, on bool) (stopped bool) {
	switch {
	case on && ms.stop == nil:
		ctx, ms.stop = context.WithCancel(ctx)
		go ms.run(ctx)
	case !on && ms.stop != nil:
		ms.stop()
		ms.stop = nil
		return true
	}
	return false
}

// kick asks a running loop for a round now: a new seed may be another
// cluster.
func (ms *memberSync) kick() {
	select {
	case ms.now <- struct{}{}:
	default:
	}
}

// run runs rounds until ctx is done.
func (ms *memberSync) run(ctx context.Context) {
	for {
		ms.round(ctx)
		interval := ms.pool.Settings().MemberSync
		if interval <= 0 {
			return // being stopped
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-ms.now:
			t.Stop()
		}
	}
}

// round runs one round: MemberList through an endpoint, then the pool's
// discovered set replaced by the voting members that are not configured
// already. A failed round changes nothing.
func (ms *memberSync) round(ctx context.Context) {
	eps := ms.pool.candidates()
	if len(eps) == 0 {
		return // not given its endpoints yet: Update will ask for a round
	}
	members, via, err := ms.memberList(ctx, eps)
	if err != nil {
		if ctx.Err() == nil {
			ms.log.WithError(err).Warn("member sync failed; the endpoints stay as they are")
		}
		return
	}
	found, ok := ms.pool.discover(ctx, members)
	if !ok {
		return // stopped meanwhile
	}
	ms.log.WithFields(logrus.Fields{"via": via, "members": len(members), "discovered": found}).Debug("member sync")
	ms.rounds.Add(1)
}

// member is what member sync uses of an etcd member.
type member struct {
	Name       string
	IsLearner  bool
	ClientURLs []string
}

// memberList asks the cluster for its members through the first of eps
// that answers. It returns the members and the address that answered.
func (ms *memberSync) memberList(ctx context.Context, eps []*Endpoint) ([]member, string, error) {
	var errs []error
	for _, ep := range eps {
		members, err := ms.memberListVia(ctx, ep)
		if err == nil {
			return members, ep.addr, nil
		}
		errs = append(errs, fmt.Errorf("endpoint %s: %w", ep.addr, err))
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
	}
	return nil, "", errors.Join(errs...)
}

// memberListVia asks ep for the cluster's members with a linearizable
// MemberList (a server that predates the flag answers from its own view),
// over TLS as tlsFor says, within twice the dial timeout.
func (ms *memberSync) memberListVia(ctx context.Context, ep *Endpoint) ([]member, error) {
	s := ms.pool.Settings()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{ep.addr},
		DialTimeout: s.DialTimeout,
		TLS:         tlsFor(&s, ep.Record()).config(),
		Logger:      zap.NewNop(),
		// Dial as the pool does, through the gateway's cached addresses.
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return ms.dial(ctx, "tcp", addr)
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*s.DialTimeout)
	defer cancel()
	resp, err := cli.MemberList(rctx)
	if err != nil {
		return nil, fmt.Errorf("MemberList: %w", err)
	}
	members := make([]member, 0, len(resp.Members))
	for _, m := range resp.Members {
		members = append(members, member{Name: m.Name, IsLearner: m.IsLearner, ClientURLs: m.ClientURLs})
	}
	return members, nil
}

// membersToEndpoints turns the members into endpoints: one per voting
// member that has started (a member added but not started has no client
// URL yet), learners left out, and members already in the pool through a
// configured address skipped. Of a member's client URLs it takes the first
// that is not loopback, or the first when all are; https marks it TLS.
func membersToEndpoints(ms []member, configured map[string]bool) []resolver.Endpoint {
	var out []resolver.Endpoint
	for _, m := range ms {
		if m.IsLearner {
			continue
		}
		var cands []resolver.Endpoint
		known := false
		for _, raw := range m.ClientURLs {
			re, ok := clientURLEndpoint(raw)
			if !ok {
				continue
			}
			known = known || configured[re.Addr]
			cands = append(cands, re)
		}
		if known || len(cands) == 0 {
			continue
		}
		pick := cands[0]
		for _, c := range cands {
			if !config.IsLoopback(c.Addr) {
				pick = c
				break
			}
		}
		out = append(out, pick)
	}
	slices.SortFunc(out, func(a, b resolver.Endpoint) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(out, func(a, b resolver.Endpoint) bool { return a.Addr == b.Addr })
}

// clientURLEndpoint parses an advertised client URL (http:// or https://
// with host:port).
func clientURLEndpoint(raw string) (resolver.Endpoint, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" || u.Hostname() == "" {
		return resolver.Endpoint{}, false
	}
	return resolver.Endpoint{Addr: u.Host, TLS: u.Scheme == "https"}, true
}
