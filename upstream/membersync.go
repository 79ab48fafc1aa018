package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/etcd-gateway/etcd-gateway/resolver"
)

// syncMemberSyncLocked starts or stops member sync as the settings say.
// Stopping it drops the members it had added. The caller holds updateMu.
func (p *Pool) syncMemberSyncLocked() {
	on := p.settings.Load().MemberSync > 0
	switch {
	case on && p.syncStop == nil:
		ctx, cancel := context.WithCancel(p.ctx)
		p.syncStop = cancel
		go p.runMemberSync(ctx)
	case !on && p.syncStop != nil:
		p.syncStop()
		p.syncStop = nil
		if len(p.discovered) > 0 {
			p.discovered = nil
			p.publishLocked("member-sync off")
		}
	}
}

// runMemberSync asks the cluster for its members at once, then every
// member-sync interval and whenever the seed changes, until ctx is done.
func (p *Pool) runMemberSync(ctx context.Context) {
	for {
		p.syncMembers(ctx)
		interval := p.settings.Load().MemberSync
		if interval <= 0 {
			return // being stopped
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-p.syncNow:
			t.Stop()
		}
	}
}

// syncMembers runs one round of member sync: MemberList through an
// endpoint, then the pool's discovered set replaced by the voting members
// that are not configured already. A failed round changes nothing.
func (p *Pool) syncMembers(ctx context.Context) {
	if len(p.Endpoints()) == 0 {
		return // not given its endpoints yet: Update will ask for a round
	}
	members, via, err := p.memberList(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.WithError(err).Warn("member sync failed; the endpoints stay as they are")
		}
		return
	}
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	if ctx.Err() != nil {
		return // stopped meanwhile
	}
	configured := make(map[string]bool, len(p.configured))
	for _, re := range p.configured {
		configured[re.Addr] = true
	}
	found := membersToEndpoints(members, configured)
	p.log.WithFields(logrus.Fields{"via": via, "members": len(members), "discovered": len(found)}).Debug("member sync")
	p.discovered = found
	p.publishLocked("member-sync")
	p.syncRounds.Add(1)
}

// member is what member sync uses of an etcd member.
type member struct {
	Name       string
	IsLearner  bool
	ClientURLs []string
}

// memberList asks the cluster for its members through one endpoint: the
// configured ones that are up first, then discovered ones that are up, then
// the rest. It returns the members and the address that answered.
func (p *Pool) memberList(ctx context.Context) ([]member, string, error) {
	p.updateMu.Lock()
	configured := make(map[string]bool, len(p.configured))
	for _, re := range p.configured {
		configured[re.Addr] = true
	}
	p.updateMu.Unlock()
	eps := slices.Clone(p.Endpoints())
	rank := func(ep *Endpoint) int {
		r := 0
		if !configured[ep.addr] {
			r++
		}
		if !ep.Up() {
			r += 2
		}
		return r
	}
	slices.SortStableFunc(eps, func(a, b *Endpoint) int { return rank(a) - rank(b) })

	var errs []error
	for _, ep := range eps {
		ms, err := p.memberListVia(ctx, ep)
		if err == nil {
			return ms, ep.addr, nil
		}
		errs = append(errs, fmt.Errorf("endpoint %s: %w", ep.addr, err))
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
	}
	if len(errs) == 0 {
		return nil, "", errors.New("no endpoint to ask")
	}
	return nil, "", errors.Join(errs...)
}

// memberListVia asks ep for the cluster's members with a linearizable
// MemberList (a server that predates the flag answers from its own view),
// over TLS as tlsFor says, within twice the dial timeout.
func (p *Pool) memberListVia(ctx context.Context, ep *Endpoint) ([]member, error) {
	s := p.settings.Load()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{ep.addr},
		DialTimeout: s.DialTimeout,
		TLS:         tlsFor(s, ep.Record()).config(),
		Logger:      zap.NewNop(),
		// Dial as the pool does, through the gateway's cached addresses.
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return p.dial(ctx, "tcp", addr)
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
	ms := make([]member, 0, len(resp.Members))
	for _, m := range resp.Members {
		ms = append(ms, member{Name: m.Name, IsLearner: m.IsLearner, ClientURLs: m.ClientURLs})
	}
	return ms, nil
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
			if !isLoopback(c.Addr) {
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

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
