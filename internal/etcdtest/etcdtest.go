// Package etcdtest runs real etcd clusters in-process on loopback, with
// go.etcd.io/etcd/server/v3/embed, for the tests and the demo. It is never
// linked into the gateway binary.
package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/etcd-gateway/etcd-gateway/internal/loopback"
)

// startTimeout bounds how long a member may take to become ready.
const startTimeout = 30 * time.Second

// Member is one etcd member of a Cluster.
type Member struct {
	Name      string
	ClientURL url.URL
	PeerURL   url.URL
	dir       string
	// initialCluster and clusterState are what the member was first
	// started with: the cluster's members and "new", or, for a member
	// added to a running cluster, the members at that time and
	// "existing".
	initialCluster string
	clusterState   string

	mu      sync.Mutex
	etcd    *embed.Etcd
	id      uint64
	removed bool
}

// ClientAddr is the member's client host:port.
func (m *Member) ClientAddr() string { return m.ClientURL.Host }

// Running reports whether the member is started.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd != nil
}

// ID is the member's etcd ID, known once it has been started.
func (m *Member) ID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Cluster is a set of members that form one etcd cluster. Members removed
// with RemoveMember stay in Members, stopped.
type Cluster struct {
	Members []*Member
	dir     string
	token   string
	opts    Options
	// holds keep the members' ports until Close.
	holds []*loopback.Hold
}

// Options tune a cluster started with StartWithOptions.
type Options struct {
	// TLS, when set, makes every member serve its client port over TLS.
	TLS *TLS
	// QuotaBackendBytes, when set, is every member's backend quota
	// (--quota-backend-bytes): a tiny one raises NOSPACE after a few puts.
	QuotaBackendBytes int64
}

// TLS is how the members serve client TLS. Peers speak plain HTTP.
type TLS struct {
	// CertFile and KeyFile are the PEM certificate and key every member
	// serves; the certificate must be valid for 127.0.0.1.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the members require client
	// certificates signed by it (--client-cert-auth).
	ClientCAFile string
	// Client is what the cluster's own client (AddMember, RemoveMember)
	// connects with: the CA, and a client certificate when ClientCAFile
	// is set.
	Client *tls.Config
}

// Start starts a cluster of n members with data under dir and waits until
// every member is ready.
func Start(dir string, n int) (*Cluster, error) {
	return StartWithOptions(dir, n, Options{})
}

// StartWithOptions is Start with options.
func StartWithOptions(dir string, n int, opts Options) (*Cluster, error) {
	c := &Cluster{dir: dir, token: filepath.Base(dir), opts: opts}
	var peers []string
	for i := range n {
		m, err := c.newMember(i)
		if err != nil {
			return nil, err
		}
		c.Members = append(c.Members, m)
		peers = append(peers, m.Name+"="+m.PeerURL.String())
	}
	for _, m := range c.Members {
		m.initialCluster = strings.Join(peers, ",")
		m.clusterState = embed.ClusterStateFlagNew
	}

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(m)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// newMember returns member i on ports the cluster holds, not started.
func (c *Cluster) newMember(i int) (*Member, error) {
	cu, err := c.reserveURL()
	if err != nil {
		return nil, err
	}
	pu, err := c.reserveURL()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("m%d", i)
	if c.opts.TLS != nil {
		cu.Scheme = "https"
	}
	return &Member{Name: name, ClientURL: cu, PeerURL: pu, dir: filepath.Join(c.dir, name)}, nil
}

// ClientAddrs lists the client host:port addresses of the members that
// were not removed.
func (c *Cluster) ClientAddrs() []string {
	out := make([]string, 0, len(c.Members))
	for _, m := range c.Members {
		if !m.isRemoved() {
			out = append(out, m.ClientAddr())
		}
	}
	return out
}

func (m *Member) isRemoved() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed
}

// AddMember grows the running cluster by one voting member: AddLearner,
// then Promote. It returns the new member's index in Members.
//
// Going through a learner keeps the quorum unchanged while the new member
// starts; a voting member added to a one-member cluster would stall the
// cluster until it has caught up.
func (c *Cluster) AddMember() (int, error) {
	i, err := c.AddLearner()
	if err != nil {
		return 0, err
	}
	return i, c.Promote(i)
}

// AddLearner announces a new member as a learner with MemberAddAsLearner
// through a running member, then starts it with initial cluster state
// "existing" and waits until it is ready. It returns the new member's index
// in Members.
func (c *Cluster) AddLearner() (int, error) {
	m, err := c.newMember(len(c.Members))
	if err != nil {
		return 0, err
	}
	cli, err := c.client()
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	resp, err := cli.MemberAddAsLearner(ctx, []string{m.PeerURL.String()})
	if err != nil {
		return 0, fmt.Errorf("etcd member %s: MemberAddAsLearner: %w", m.Name, err)
	}
	// The new member must be started with the membership as the cluster
	// now has it: every member's name and peer URL, its own included.
	var peers []string
	for _, pm := range resp.Members {
		name := pm.Name
		if pm.ID == resp.Member.ID {
			name = m.Name
		}
		for _, u := range pm.PeerURLs {
			peers = append(peers, name+"="+u)
		}
	}
	m.initialCluster = strings.Join(peers, ",")
	m.clusterState = embed.ClusterStateFlagExisting
	c.Members = append(c.Members, m)
	if err := c.start(m); err != nil {
		return 0, err
	}
	return len(c.Members) - 1, nil
}

// Promote makes the learner i a voting member, retrying while etcd says
// it has not caught up with the leader yet, and returns once the member
// itself has applied its promotion.
func (c *Cluster) Promote(i int) error {
	m := c.Members[i]
	cli, err := c.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		_, err := cli.MemberPromote(ctx, m.ID())
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "in sync with leader") || ctx.Err() != nil {
			return fmt.Errorf("etcd member %s: MemberPromote: %w", m.Name, err)
		}
		if err := pause(ctx); err != nil {
			return fmt.Errorf("etcd member %s: MemberPromote: %w", m.Name, err)
		}
	}
	for m.isLearner() {
		if err := pause(ctx); err != nil {
			return fmt.Errorf("etcd member %s: promoted, but still a learner: %w", m.Name, err)
		}
	}
	return nil
}

// isLearner reports whether the running member sees itself as a learner.
func (m *Member) isLearner() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd != nil && m.etcd.Server.IsLearner()
}

// pause waits a moment before a retry, or returns ctx's error.
func pause(ctx context.Context) error {
	select {
	case <-time.After(20 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveMember takes member i out of the cluster with MemberRemove,
// through another running member, and stops it.
func (c *Cluster) RemoveMember(i int) error {
	m := c.Members[i]
	id := m.ID()
	cli, err := c.client(i)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := cli.MemberRemove(ctx, id); err != nil {
		return fmt.Errorf("etcd member %s: MemberRemove: %w", m.Name, err)
	}
	m.mu.Lock()
	m.removed = true
	m.mu.Unlock()
	c.Stop(i)
	return nil
}

// client returns a client of the running members, except those at the
// indexes in except.
func (c *Cluster) client(except ...int) (*clientv3.Client, error) {
	var eps []string
	for i, m := range c.Members {
		if m.Running() && !m.isRemoved() && !slices.Contains(except, i) {
			eps = append(eps, m.ClientAddr())
		}
	}
	if len(eps) == 0 {
		return nil, errors.New("etcd cluster: no running member to ask")
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if c.opts.TLS != nil {
		cfg.TLS = c.opts.TLS.Client
	}
	return clientv3.New(cfg)
}

// Stop stops member i.
func (c *Cluster) Stop(i int) {
	m := c.Members[i]
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	m.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart starts member i again on its data and addresses.
func (c *Cluster) Restart(i int) error { return c.start(c.Members[i]) }

// Close stops every member and lets their ports go.
func (c *Cluster) Close() {
	for i := range c.Members {
		c.Stop(i)
	}
	loopback.CloseAll(c.holds)
	c.holds = nil
}

func (c *Cluster) start(m *Member) error {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.ClientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.ClientURL}
	cfg.ListenPeerUrls = []url.URL{m.PeerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.PeerURL}
	cfg.InitialCluster = m.initialCluster
	cfg.ClusterState = m.clusterState
	cfg.InitialClusterToken = c.token
	cfg.UnsafeNoFsync = true
	// Without it, etcd refuses a MemberRemove until every member has been
	// connected for 5 s, which would make the tests wait.
	cfg.StrictReconfigCheck = false
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if c.opts.QuotaBackendBytes > 0 {
		cfg.QuotaBackendBytes = c.opts.QuotaBackendBytes
	}
	if t := c.opts.TLS; t != nil {
		cfg.ClientTLSInfo.CertFile = t.CertFile
		cfg.ClientTLSInfo.KeyFile = t.KeyFile
		if t.ClientCAFile != "" {
			cfg.ClientTLSInfo.TrustedCAFile = t.ClientCAFile
			cfg.ClientTLSInfo.ClientCertAuth = true
		}
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcd member %s: %w", m.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd member %s: %w", m.Name, err)
	case <-time.After(startTimeout):
		e.Close()
		return fmt.Errorf("etcd member %s: not ready after %s", m.Name, startTimeout)
	}
	m.mu.Lock()
	m.etcd = e
	m.id = uint64(e.Server.MemberID())
	m.mu.Unlock()
	return nil
}

// reserveURL returns an http URL on a loopback port the cluster holds
// until Close (loopback.Reserve): a member binds it at every start, and
// nothing else on the machine can take it while the member is stopped.
func (c *Cluster) reserveURL() (url.URL, error) {
	h, err := loopback.Reserve("127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	c.holds = append(c.holds, h)
	return url.URL{Scheme: "http", Host: h.Addr()}, nil
}
