//go:build linux

package e2e

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaderlessFor is how long a member stays cut off once it has lost its
// leader: several election timeouts, and past the gateway's
// leaderless-max, so that the gateway closes its connections. That is the
// fault, not a wait for something.
const leaderlessFor = 4 * time.Second

// leaderlessMember cuts a member off from its peers (every peer
// connection to it and from it blackholed), waits until it has lost its
// leader, leaves it so, then restores its peer traffic and waits until
// it serves again.
func leaderlessMember(t *testing.T, s *system, round int) {
	m := s.members[round%len(s.members)]
	m.peers.cutOff(m.config.AdvertisePeerURL)
	cut := time.Now()
	m.waitLeaderless(t)
	t.Logf("round %d: member %s without a leader %s after its cut", round, m.config.Name, time.Since(cut).Round(time.Millisecond))
	time.Sleep(leaderlessFor)
	m.peers.restore(m.config.AdvertisePeerURL)
	restored := time.Now()
	m.waitServes(t)
	t.Logf("round %d: serves again %s after its restore; the gateway left members for leaderless-max %d times so far",
		round, time.Since(restored).Round(time.Millisecond), len(s.gateway.logLines("endpoint without a leader for leaderless-max")))
}

// waitLeaderless waits until the member's own Status names no leader.
func (m *member) waitLeaderless(t *testing.T) {
	t.Helper()
	m.waitUntil(t, "lose its leader", func(ctx context.Context, cli *clientv3.Client) bool {
		st, err := cli.Status(ctx, m.addr())
		return err == nil && st.Leader == 0
	})
}
