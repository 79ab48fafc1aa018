//go:build linux

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// memberReadyTimeout bounds how long a member may take to serve a
// linearizable read after a start: an election on a loaded machine.
const memberReadyTimeout = 30 * time.Second

// member is one etcd member in a process of its own, which a fault can
// kill, restart on its data, freeze and thaw, and cut off from its peers
// (peers, the network its peer URL is on).
type member struct {
	config memberConfig
	proc   *child
	peers  *peerNet
}

// startMembers starts a cluster of n members, each in its own process on
// addresses the test holds, with its peer URL on a relay of a peerNet,
// and waits until every one serves.
func startMembers(t *testing.T, n int) []*member {
	t.Helper()
	dir := t.TempDir()
	net := newPeerNet()
	members := make([]*member, n)
	peers := make([]string, n)
	for i := range members {
		name := fmt.Sprintf("m%d", i)
		peerAddr := testutil.ListenAddr(t)
		members[i] = &member{peers: net, config: memberConfig{
			Name:             name,
			Dir:              filepath.Join(dir, name),
			ClientURL:        "http://" + testutil.ListenAddr(t),
			PeerURL:          "http://" + peerAddr,
			AdvertisePeerURL: net.relay(t, peerAddr),
			Token:            filepath.Base(dir),
		}}
		peers[i] = name + "=" + members[i].config.AdvertisePeerURL
	}
	for _, m := range members {
		m.config.InitialCluster = strings.Join(peers, ",")
		m.start(t)
	}
	// All are started before the first wait: none serves before a quorum.
	for _, m := range members {
		m.waitServes(t)
	}
	return members
}

// addr is the member's client host:port.
func (m *member) addr() string { return strings.TrimPrefix(m.config.ClientURL, "http://") }

// start starts the member's process; launch kills it at cleanup.
func (m *member) start(t *testing.T) {
	t.Helper()
	m.proc = launch(t, memberCommand(t, m.config), "listen as etcd member "+m.config.Name, dialable(m.addr()))
}

// kill ends the member's process with SIGKILL and waits for it.
func (m *member) kill(t *testing.T) {
	t.Helper()
	_ = m.proc.cmd.Process.Kill()
	select {
	case err := <-m.proc.done:
		m.proc.done <- err // for launch's cleanup
	case <-time.After(20 * time.Second):
		t.Fatalf("etcd member %s did not exit after SIGKILL", m.config.Name)
	}
}

// restart starts the member again on its data and waits until it serves.
func (m *member) restart(t *testing.T) {
	t.Helper()
	m.start(t)
	m.waitServes(t)
}

// signal sends sig (SIGSTOP, SIGCONT) to the member's process.
func (m *member) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := m.proc.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("etcd member %s: %v: %v", m.config.Name, sig, err)
	}
}

// waitServes waits until a linearizable read through the member alone
// succeeds: it has joined a quorum with a leader.
func (m *member) waitServes(t *testing.T) {
	t.Helper()
	m.waitUntil(t, "serve", func(ctx context.Context, cli *clientv3.Client) bool {
		_, err := cli.Get(ctx, "ready")
		return err == nil
	})
}

// waitUntil asks the member alone, a second at most each time, until cond
// holds: what says what the member is waited for to do.
func (m *member) waitUntil(t *testing.T, what string, cond func(context.Context, *clientv3.Client) bool) {
	t.Helper()
	cli := testutil.Client(t, m.addr())
	defer cli.Close()
	testutil.WaitFor(t, "etcd member "+m.config.Name+" to "+what, memberReadyTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return cond(ctx, cli)
	})
}

// memberAddrs lists the members' client host:port addresses.
func memberAddrs(members []*member) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = m.addr()
	}
	return out
}
