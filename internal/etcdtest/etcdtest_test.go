package etcdtest

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcd-gateway/etcd-gateway/internal/tlstest"
)

func TestAddAndRemoveMember(t *testing.T) {
	c, err := Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	i, err := c.AddMember()
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	if got := memberCount(t, c.Members[i].ClientAddr()); got != 2 {
		t.Fatalf("the added member sees %d members, want 2", got)
	}
	l, err := c.AddLearner()
	if err != nil {
		t.Fatalf("AddLearner: %v", err)
	}
	if n, learners := members(t, c.Members[0].ClientAddr()); n != 3 || learners != 1 {
		t.Fatalf("after AddLearner: %d members, %d learners; want 3 and 1", n, learners)
	}
	if err := c.RemoveMember(l); err != nil {
		t.Fatalf("RemoveMember(learner): %v", err)
	}
	if err := c.RemoveMember(i); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if c.Members[i].Running() {
		t.Fatal("the removed member still runs")
	}
	if got := memberCount(t, c.Members[0].ClientAddr()); got != 1 {
		t.Fatalf("after the removal the cluster has %d members, want 1", got)
	}
	if addrs := c.ClientAddrs(); len(addrs) != 1 || addrs[0] != c.Members[0].ClientAddr() {
		t.Fatalf("ClientAddrs after the removal: %v", addrs)
	}
}

func memberCount(t *testing.T, addr string) int {
	t.Helper()
	n, _ := members(t, addr)
	return n
}

// members returns the number of members and of learners addr reports.
func members(t *testing.T, addr string) (n, learners int) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("MemberList through %s: %v", addr, err)
	}
	for _, m := range resp.Members {
		if m.IsLearner {
			learners++
		}
	}
	return len(resp.Members), learners
}

// TestTLS starts a member serving client TLS with client-cert-auth: a
// client with a certificate signed by the CA gets through, one without a
// certificate does not.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	e, err := tlstest.NewEnv(dir, "etcd CA", "client")
	if err != nil {
		t.Fatal(err)
	}
	ca, clientTLS := e.CA, e.ClientTLS()
	c, err := StartWithOptions(filepath.Join(dir, "data"), 1, Options{TLS: &TLS{CertFile: e.CertFile, KeyFile: e.KeyFile, ClientCAFile: e.CAFile, Client: clientTLS}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if c.Members[0].ClientURL.Scheme != "https" {
		t.Fatalf("client URL %s, want https", c.Members[0].ClientURL.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.ClientAddrs(), DialTimeout: 5 * time.Second, TLS: clientTLS, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put with a client certificate: %v", err)
	}
	// Without a certificate the handshake fails.
	conn, err := tls.Dial("tcp", c.Members[0].ClientAddr(), &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"h2"}})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		_ = conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate got through")
	}
}
