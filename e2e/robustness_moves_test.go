//go:build linux

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// rebalanceTimeout bounds how long the gateway may take, once a killed
// member serves again, to move a connection back to it: two checks'
// rise, the 1 s slow start, a round of the mover, on a loaded machine.
const rebalanceTimeout = 30 * time.Second

// ballastClients is how many idle clients the rebalance fault adds
// through the gateway. The harness's six connections are too few to
// move: 0, 3 and 3 is within the mover's slack (1.1 times a share of 2,
// rounded up); with 18, the returning member's 6 leave 9 and 9, 2 past
// it each, and the moves sample the harness's connections with the rest.
const ballastClients = 12

// rebalanceMember kills a member and restarts it as killMember does,
// then waits until the gateway has moved connections back toward it:
// its /status counts more rebalance moves than before the kill. The
// moves happen under the traffic and the watches, which must not see
// them.
func rebalanceMember(t *testing.T, s *system, round int) {
	if round == 0 {
		openBallast(t, s.file.addr)
	}
	before := rebalanceMoves(t, s)
	killMember(t, s, round)
	name := s.members[round%len(s.members)].config.Name
	testutil.WaitFor(t, fmt.Sprintf("a rebalance after %s returned", name), rebalanceTimeout, func() bool {
		return rebalanceMoves(t, s) > before
	})
	t.Logf("rebalance %d: %d connections moved so far", round+1, rebalanceMoves(t, s))
}

// openBallast opens ballastClients clients through the gateway at addr,
// each connected by a read, then idle until cleanup: their gRPC
// balancer reconnects them when their connection ends.
func openBallast(t *testing.T, addr string) {
	t.Helper()
	for i := range ballastClients {
		cli := testutil.Client(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_, err := cli.Get(ctx, "ballast")
		cancel()
		if err != nil {
			t.Fatalf("ballast client %d: %v", i, err)
		}
	}
}

// rebalanceMoves sums the endpoints' rebalance moves in /status.
func rebalanceMoves(t *testing.T, s *system) uint64 {
	t.Helper()
	var n uint64
	for _, ep := range statusEndpoints(t, s.file.moves.admin) {
		n += ep.Moves.Rebalance
	}
	return n
}

// drainMember runs `etcd-gateway drain` on the member that holds the
// most connections, which must exit 0 within its 10 s timeout, then
// `undrain`: the clients moved off it must see nothing of the move.
func drainMember(t *testing.T, s *system, round int) {
	addr := busiestMember(t, s)
	out, code := runCLI(t, "drain", "--config", s.file.path, "--timeout", "10s", "etcd", addr)
	if code != 0 || !strings.Contains(out, "drained:") {
		t.Fatalf("drain %d of %s: exit %d, %q", round+1, addr, code, out)
	}
	t.Logf("drain %d: %s", round+1, strings.TrimSpace(out))
	if out, code := runCLI(t, "undrain", "--config", s.file.path, "etcd", addr); code != 0 {
		t.Fatalf("undrain %d of %s: exit %d, %q", round+1, addr, code, out)
	}
}

// busiestMember is the address of the endpoint with the most open
// connections in /status: the member the clients use most.
func busiestMember(t *testing.T, s *system) string {
	t.Helper()
	best, most := "", int64(-1)
	for addr, ep := range statusEndpoints(t, s.file.moves.admin) {
		if ep.Open > most {
			best, most = addr, ep.Open
		}
	}
	return best
}
