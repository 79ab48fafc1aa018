// Package etcdtest runs real etcd clusters in-process on loopback, with
// go.etcd.io/etcd/server/v3/embed, for the tests and the demo. It is never
// linked into the gateway binary.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startTimeout bounds how long a member may take to become ready.
const startTimeout = 30 * time.Second

// Member is one etcd member of a Cluster.
type Member struct {
	Name      string
	ClientURL url.URL
	PeerURL   url.URL
	dir       string

	mu   sync.Mutex
	etcd *embed.Etcd
}

// ClientAddr is the member's client host:port.
func (m *Member) ClientAddr() string { return m.ClientURL.Host }

// Running reports whether the member is started.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd != nil
}

// Cluster is a set of members that form one etcd cluster.
type Cluster struct {
	Members        []*Member
	initialCluster string
	token          string
}

// Start starts a cluster of n members with data under dir and waits until
// every member is ready.
func Start(dir string, n int) (*Cluster, error) {
	c := &Cluster{token: filepath.Base(dir)}
	var peers []string
	for i := range n {
		cu, err := freeURL()
		if err != nil {
			return nil, err
		}
		pu, err := freeURL()
		if err != nil {
			return nil, err
		}
		m := &Member{Name: fmt.Sprintf("m%d", i), ClientURL: cu, PeerURL: pu, dir: filepath.Join(dir, fmt.Sprintf("m%d", i))}
		c.Members = append(c.Members, m)
		peers = append(peers, m.Name+"="+pu.String())
	}
	c.initialCluster = strings.Join(peers, ",")

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

// ClientAddrs lists the members' client host:port addresses.
func (c *Cluster) ClientAddrs() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientAddr()
	}
	return out
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

// Close stops every member.
func (c *Cluster) Close() {
	for i := range c.Members {
		c.Stop(i)
	}
}

func (c *Cluster) start(m *Member) error {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.ClientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.ClientURL}
	cfg.ListenPeerUrls = []url.URL{m.PeerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.PeerURL}
	cfg.InitialCluster = c.initialCluster
	cfg.InitialClusterToken = c.token
	cfg.UnsafeNoFsync = true
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())

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
	m.mu.Unlock()
	return nil
}

// freeURL returns an http URL on a loopback port that is free now.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	return url.URL{Scheme: "http", Host: addr}, nil
}
