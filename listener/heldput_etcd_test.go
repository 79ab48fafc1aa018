package listener

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
	"github.com/etcd-gateway/etcd-gateway/resolver"
	"github.com/etcd-gateway/etcd-gateway/upstream"
)

// These tests hold the answer to a clientv3 put in a relay between the
// gateway and a real etcd member while a move of its connection runs, and
// check that the move waits for the answer (docs/design.md, "Moving
// connections").

// heldPuts is how many clients put while the rebalance test holds their
// answers; one more, idle, is what a round can move at once. It connects
// last: a move leaves a connection alone for its first second, so the
// round that moves it tries the others too.
const heldPuts = 4

// quietFor is the window a move asks a connection to have been quiet for
// (upstream's quietWindow).
const quietFor = 10 * time.Millisecond

// TestRebalanceWaitsForHeldPuts: clientv3 puts through TLS passthrough,
// which the gateway can't send a GOAWAY on, so a move closes only when
// quiet. Five clients sit on member 0, behind a relay; four put, and the
// relay holds the answers. Member 1 joins: the shares want two of the
// five moved, and a round moves the idle client at once and keeps trying
// the others. Nothing else moves while the answers are owed, and
// CloseIfQuiet, the mover's own way out, refuses each of them. Once
// released, every put succeeds, a round moves one of the four (the one
// move the shares still want), its client lands on member 1, and every
// client puts again without an error.
func TestRebalanceWaitsForHeldPuts(t *testing.T) {
	c, env := testutil.TLSCluster(t, 2, false)
	trust := &tls.Config{RootCAs: env.CA.Pool()}
	r := testutil.HoldRelay(t, c.Members[0].ClientAddr())
	l, pool := poolListener(t, upstream.Settings{Policy: config.PolicyLeastConnections, Rebalance: true}, r.Addr)
	clis := make([]*clientv3.Client, heldPuts+1)
	for i := range clis {
		clis[i] = testutil.ClientWith(t, clientv3.Config{Endpoints: []string{l.Addr().String()}, TLS: trust})
		mustPut(t, clis[i], i)
	}
	direct := testutil.ClientWith(t, clientv3.Config{Endpoints: []string{c.Members[1].ClientAddr()}, TLS: trust})
	puts, _ := holdPuts(t, l, r, 0, direct, clis[:heldPuts])
	pool.UpdateFrom("config", resolver.Static([]string{r.Addr, c.Members[1].ClientAddr()}))
	from, to := poolEndpoint(t, pool, r.Addr), poolEndpoint(t, pool, c.Members[1].ClientAddr())
	testutil.WaitFor(t, "a round moving the idle client to member 1", testTimeout, func() bool {
		return from.Stats().Moves.Rebalance > 0 && to.OpenConns() > 0
	})
	refuseToClose(t, l, r.Addr)
	checkHeld(t, puts, from, heldPuts)
	r.Release()
	waitPuts(t, puts, heldPuts)
	testutil.WaitFor(t, "a connection of a held put moved, its client on member 1", testTimeout, func() bool {
		return from.Stats().Moves.Rebalance >= 2 && from.OpenConns() == heldPuts-1 && to.OpenConns() == 2
	})
	for i, cli := range clis {
		mustPut(t, cli, i)
	}
	t.Logf("moves %+v; open %d and %d; %d connections in all", from.Stats().Moves, from.OpenConns(), to.OpenConns(), l.TotalConns())
}

// holdPuts has r pass cut more bytes back on each connection, then hold
// the rest, and puts with each of clis through l, once its connections
// settled; it returns once direct, a client of another way in, sees the
// puts applied and r holds the rest of each answer. It returns the puts'
// errors, to come, and how many bytes r will have passed back by then.
func holdPuts(t *testing.T, l *Listener, r *testutil.HoldingRelay, cut int, direct *clientv3.Client, clis []*clientv3.Client) (<-chan error, int64) {
	t.Helper()
	waitSettled(t, l)
	heldAt := r.Passed() + int64(cut)
	r.Hold(cut)
	puts := startPuts(clis, "held")
	waitApplied(t, direct, "held", int64(len(clis)))
	testutil.WaitFor(t, "every answer held in the relay", testTimeout, func() bool { return r.Holding() == len(clis) })
	return puts, heldAt
}

// refuseToClose makes the mover's move of each of l's connections to
// addr, once quiet for a move's window but owed an answer: it must be no
// GOAWAY (TLS passthrough) and no close.
func refuseToClose(t *testing.T, l *Listener, addr string) {
	t.Helper()
	for _, pc := range connsTo(l, addr) {
		testutil.WaitFor(t, "a connection silent for a move's window", testTimeout, func() bool { return silentFor(pc, 2*quietFor) })
		if pc.GoAway() {
			t.Fatal("GoAway on a TLS connection")
		}
		if owed := pc.Unanswered(); pc.CloseIfQuiet(quietFor) {
			t.Fatalf("CloseIfQuiet closed a connection owed an answer since %s", owed.Format(time.StampMicro))
		}
	}
}

// checkHeld fails t unless the puts are all in flight and the n
// connections of from that carry them are open, with one move so far.
func checkHeld(t *testing.T, puts <-chan error, from *upstream.Endpoint, n int64) {
	t.Helper()
	if len(puts) > 0 {
		t.Fatalf("a put ended while its answer was held: %v", <-puts)
	}
	if m, open := from.Stats().Moves, from.OpenConns(); m.Rebalance != 1 || open != n {
		t.Fatalf("while the answers were held: moves %+v, %d connections open; want 1 move (the idle one), %d open", m, open, n)
	}
}

// connsTo returns l's connections to the endpoint at addr.
func connsTo(l *Listener, addr string) []*proxyConn {
	var out []*proxyConn
	l.conns.Range(func(k, _ any) bool {
		pc := k.(*proxyConn)
		pc.mu.Lock()
		defer pc.mu.Unlock()
		if pc.ep == addr {
			out = append(out, pc)
		}
		return true
	})
	return out
}

// settleFor is how long a connection that the member spoke last on must
// have been silent for its last exchange (the answer, the pings of
// HTTP/2's window estimate) to be over.
const settleFor = 50 * time.Millisecond

// waitSettled waits until each of l's connections has settled: the
// member spoke last and nothing moved for settleFor. A hold then holds
// what answers the next request, not the rest of the last exchange.
func waitSettled(t *testing.T, l *Listener) {
	t.Helper()
	testutil.WaitFor(t, "every connection settled", testTimeout, func() bool {
		settled := true
		l.conns.Range(func(k, _ any) bool {
			pc := k.(*proxyConn)
			settled = silentFor(pc, settleFor) && pc.Unanswered().IsZero()
			return settled
		})
		return settled
	})
}

// silentFor reports whether pc's forwarding moved no byte either way for
// d, whoever spoke last.
func silentFor(pc *proxyConn, d time.Duration) bool {
	fwd := pc.forwarding()
	if fwd == nil {
		return false
	}
	a, now := fwd.Activity(), time.Now()
	return now.Sub(a.ToUpstream) >= d && now.Sub(a.ToClient) >= d
}

// mustPut is client i's put, which must succeed.
func mustPut(t *testing.T, cli *clientv3.Client, i int) {
	t.Helper()
	if err := op(cli.KV, fmt.Sprintf("client-%d", i), 0); err != nil {
		t.Fatalf("client %d: put: %v", i, err)
	}
}

// startPuts puts key prefix-i with each client i of clis in the
// background; each put's error comes on the channel.
func startPuts(clis []*clientv3.Client, prefix string) <-chan error {
	errs := make(chan error, len(clis))
	for i, cli := range clis {
		go func() { errs <- op(cli.KV, fmt.Sprintf("%s-%d", prefix, i), 0) }()
	}
	return errs
}

// waitPuts waits for n puts of startPuts, which must succeed.
func waitPuts(t *testing.T, puts <-chan error, n int) {
	t.Helper()
	for range n {
		select {
		case err := <-puts:
			if err != nil {
				t.Errorf("a held put failed: %v", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("a put never ended")
		}
	}
}

// waitApplied waits until the cluster, asked with cli, holds n keys of
// prefix: the puts were applied, and their answers are owed.
func waitApplied(t *testing.T, cli *clientv3.Client, prefix string, n int64) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%d puts applied", n), testTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == n
	})
}
