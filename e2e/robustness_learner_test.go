//go:build linux

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// learnerClients is how many new clients, each on a connection of its
// own, are sent through the gateway while a learner is among its
// endpoints: with round robin over four, some would reach it if the
// gateway let them.
const learnerClients = 8

// learner is a fourth member added as a learner for one round.
type learner struct {
	m  *member
	id uint64
}

// addLearner adds a fourth member as a learner, names it to the gateway
// by a reload, has new clients served while it catches up (the gateway
// must give it none: it refuses all but Status), promotes it, and removes
// it again so that the next round starts from three members.
func addLearner(t *testing.T, s *system, round int) {
	l := joinAsLearner(t, s, round)
	reloadWith(t, s, append(memberAddrs(s.members), l.m.addr()))
	l.waitCaughtUp(t, s)
	waitGatewayLog(t, s, "endpoint is a learner", l.m.addr())
	l.assertNoClients(t, s)
	l.promote(t, s)
	waitGatewayLog(t, s, "endpoint promoted from learner", l.m.addr())
	reloadWith(t, s, memberAddrs(s.members))
	l.remove(t, s)
}

// joinAsLearner adds a member as a learner through the first member and
// starts its process on addresses the test holds, joining the cluster.
func joinAsLearner(t *testing.T, s *system, round int) *learner {
	t.Helper()
	first := s.members[0].config
	name := fmt.Sprintf("learner%d", round)
	m := &member{config: memberConfig{
		Name: name, Dir: filepath.Join(t.TempDir(), name),
		ClientURL: "http://" + testutil.ListenAddr(t), PeerURL: "http://" + testutil.ListenAddr(t),
		Token: first.Token, Existing: true,
	}}
	m.config.InitialCluster = first.InitialCluster + "," + name + "=" + m.config.PeerURL
	id := addAsLearner(t, s, m.config.PeerURL)
	m.start(t)
	return &learner{m: m, id: id}
}

// addAsLearner adds the member at peerURL as a learner and returns its
// ID. etcd refuses while a member was not connected for a while (a
// restart, a freeze of an earlier round): that is retried.
func addAsLearner(t *testing.T, s *system, peerURL string) uint64 {
	t.Helper()
	var id uint64
	var err error
	testutil.WaitFor(t, "MemberAddAsLearner to be accepted", memberReadyTimeout, func() bool {
		var resp *clientv3.MemberAddResponse
		resp, err = clusterCall(t, s, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberAddResponse, error) {
			return cli.MemberAddAsLearner(ctx, []string{peerURL})
		})
		if err != nil && !errors.Is(err, rpctypes.ErrUnhealthy) {
			t.Fatalf("MemberAddAsLearner %s: %v", peerURL, err)
		}
		if err == nil {
			id = resp.Member.ID
		}
		return err == nil
	})
	return id
}

// clusterCall runs call with a client of the first member and a timeout.
func clusterCall[R any](t *testing.T, s *system, call func(context.Context, *clientv3.Client) (R, error)) (R, error) {
	t.Helper()
	cli := testutil.Client(t, s.members[0].addr())
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return call(ctx, cli)
}

// reloadWith saves the config with endpoints and waits until the gateway
// has applied it.
func reloadWith(t *testing.T, s *system, endpoints []string) {
	t.Helper()
	before := len(s.gateway.logLines("config reloaded"))
	s.file.write(t, endpoints)
	testutil.WaitFor(t, "the reload to be applied", 10*time.Second, func() bool {
		return len(s.gateway.logLines("config reloaded")) > before
	})
}

// waitGatewayLog waits for a gateway log line with msg about the
// endpoint addr.
func waitGatewayLog(t *testing.T, s *system, msg, addr string) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("the gateway to log %q for %s", msg, addr), 30*time.Second, func() bool {
		for _, line := range s.gateway.logLines(msg) {
			if strings.Contains(line, `"`+addr+`"`) {
				return true
			}
		}
		return false
	})
}

// waitCaughtUp waits until the learner has applied what the cluster had
// committed when the wait began.
func (l *learner) waitCaughtUp(t *testing.T, s *system) {
	t.Helper()
	target := raftIndex(t, s.members[0].addr())
	testutil.WaitFor(t, "the learner to catch up", memberReadyTimeout, func() bool {
		st, err := clusterCall(t, s, func(ctx context.Context, cli *clientv3.Client) (*clientv3.StatusResponse, error) {
			return cli.Status(ctx, l.m.addr())
		})
		return err == nil && st.IsLearner && st.RaftAppliedIndex >= target
	})
}

// raftIndex is the raft index of the member at addr.
func raftIndex(t *testing.T, addr string) uint64 {
	t.Helper()
	return testutil.MemberStatus(t, addr).RaftIndex
}

// assertNoClients sends learnerClients new clients through the gateway,
// each a linearizable get on a connection of its own, which a learner
// would refuse; then the learner must have been asked no RPC but Status
// (the gateway's check).
func (l *learner) assertNoClients(t *testing.T, s *system) {
	t.Helper()
	for i := range learnerClients {
		cli := testutil.Client(t, s.file.addr)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := cli.Get(ctx, "learner-probe")
		cancel()
		cli.Close()
		if err != nil {
			t.Errorf("new client %d through the gateway while a learner is listed: %v", i, err)
		}
	}
	if calls := l.clientRPCs(t); calls != 0 {
		t.Errorf("the learner served %d client RPCs (not Status): the gateway gave it clients", calls)
	}
}

// clientRPCs counts the gRPC calls the member started, Status left out,
// from its metrics.
func (l *learner) clientRPCs(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(l.m.config.ClientURL + "/metrics")
	if err != nil {
		t.Fatalf("the learner's metrics: %v", err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "grpc_server_started_total{") && !strings.Contains(line, `grpc_method="Status"`) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			n += int(v)
		}
	}
	return n
}

// promote promotes the learner once etcd finds it in sync with the
// leader.
func (l *learner) promote(t *testing.T, s *system) {
	t.Helper()
	testutil.WaitFor(t, "the learner to be promoted", memberReadyTimeout, func() bool {
		_, err := clusterCall(t, s, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberPromoteResponse, error) {
			return cli.MemberPromote(ctx, l.id)
		})
		return err == nil
	})
}

// remove removes the member from the cluster and stops its process.
func (l *learner) remove(t *testing.T, s *system) {
	t.Helper()
	_, err := clusterCall(t, s, func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberRemoveResponse, error) {
		return cli.MemberRemove(ctx, l.id)
	})
	if err != nil {
		t.Fatalf("MemberRemove %s: %v", l.m.config.Name, err)
	}
	l.m.kill(t)
}
