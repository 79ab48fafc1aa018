package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/etcdtest"
	"github.com/etcd-gateway/etcd-gateway/internal/testutil"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// TestMemberKilledMidStream kills the member a watch is streaming from: a
// raw connection to it sees a clean close, not a hang, and the etcd client
// reconnects through the gateway to another member and keeps receiving.
func TestMemberKilledMidStream(t *testing.T) {
	c := testutil.Cluster(t, 3)
	h, addr := startMain(t, c.ClientAddrs())

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wch := openWatch(t, ctx, addr, "s/", "s/0", "before")
	raw := rawConn(t, addr) // sticky: to the same member
	used := h.usedEndpoint("main")
	accepted := h.gw.Group().Listeners()["main"].TotalConns()

	for i, m := range c.Members {
		if m.ClientAddr() == used {
			c.Stop(i)
		}
	}
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("raw connection to the killed member: %v, want a clean EOF", err)
	}

	var alive string
	for _, a := range c.ClientAddrs() {
		if a != used {
			alive = a
		}
	}
	writer := testutil.Client(t, alive)
	if _, err := writer.Put(ctx, "s/1", "after"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for !seen["s/1"] {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Canceled {
				t.Fatalf("watch ended: closed=%v err=%v", !ok, wr.Err())
			}
			for _, ev := range wr.Events {
				seen[string(ev.Kv.Key)] = true
			}
		case <-ctx.Done():
			t.Fatalf("the watch did not resume on another member (saw %v)", seen)
		}
	}
	if got := h.gw.Group().Listeners()["main"].TotalConns(); got <= accepted {
		t.Fatal("the client did not reconnect through the gateway")
	}
}

// TestSoak runs load, member failover and reloads at once for about two
// minutes (ETCD_GATEWAY_SOAK overrides). Every client error must be
// explained by the member its operation reached through the gateway: that
// member's witness, GET /health sent straight to it, failed or stalled
// during the operation (the member was killed, was restarting, or had no
// leader); or by the kill of the cluster's leader while the operation was
// in flight (etcd drops the proposals a follower forwarded to a leader that
// dies, and the client waits out its timeout, whichever member it is on).
// An error on a member that answered its witness, with no leader killed
// during it, is the gateway's (reloads, accept, forwarding) and fails the
// test.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped in -short")
	}
	duration := 100 * time.Second
	if d, err := time.ParseDuration(os.Getenv("ETCD_GATEWAY_SOAK")); err == nil {
		duration = d
	}
	s := startSoak(t)
	ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
	defer cancel()
	witnesses := map[string]*witness{}
	for _, ep := range s.eps {
		witnesses[ep] = startWitness(ctx, ep)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	const clients = 8
	for i := range clients {
		s.startClient(ctx, t, i, &stop, &wg)
	}

	start := time.Now()
	s.churn(t, duration)
	stop.Store(true)
	wg.Wait()
	cancel() // the witnesses
	for _, w := range witnesses {
		<-w.done
	}
	s.judge(t, witnesses, time.Since(start))
}

// soak is TestSoak's gateway in front of a three-member cluster, and what
// happened to it and its clients.
type soak struct {
	c     *etcdtest.Cluster
	h     *harness
	addr  string
	eps   []string // the members'
	dead  string   // a listed endpoint that never answers: failover on every fresh pick of it
	conns *connLog

	// Owned by churn's goroutine.
	events          timeline
	leaderKills     []span // when a member that was the leader was being killed
	reloads, killed int
	down            int // the member stopped, -1 when none

	ops      atomic.Int64
	mu       sync.Mutex
	failures []failedOp
}

// startSoak starts the cluster and the gateway.
func startSoak(t *testing.T) *soak {
	c := testutil.Cluster(t, 3)
	s := &soak{c: c, addr: testutil.ListenAddr(t), eps: c.ClientAddrs(), dead: testutil.ListenAddr(t), conns: newConnLog(), down: -1}
	dir := t.TempDir()
	s.h = startHarnessLog(t, dir, filepath.Join(dir, "gw.yaml"), s.config(0), s.conns)
	return s
}

// config is the configuration of reload i: every other one also lists the
// dead endpoint.
func (s *soak) config(i int) string {
	list := slices.Clone(s.eps)
	if i%2 == 1 {
		list = append(list, s.dead)
	}
	return render(listenerSpec{name: "main", addr: s.addr, endpoints: list, extra: "    retry-delay: 500ms\n"})
}

// startClient starts client i, which puts and gets its key through the
// gateway until stop, counting what succeeds and recording what fails.
func (s *soak) startClient(ctx context.Context, t *testing.T, i int, stop *atomic.Bool, wg *sync.WaitGroup) {
	cli, local := soakClient(t, s.addr)
	wg.Add(1)
	go func() {
		defer wg.Done()
		key := fmt.Sprintf("soak/%d", i)
		for n := 0; n < 10_000_000 && !stop.Load(); n++ { // bounded
			f := failedOp{client: i, start: time.Now(), conns: []string{local()}}
			opCtx, opCancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := cli.Put(opCtx, key, fmt.Sprint(n))
			if err == nil {
				_, err = cli.Get(opCtx, key)
			}
			opCancel()
			if err == nil {
				s.ops.Add(1)
				continue
			}
			f.end, f.err = time.Now(), err
			f.conns = append(f.conns, local())
			s.mu.Lock()
			s.failures = append(s.failures, f)
			s.mu.Unlock()
		}
	}()
}

// churn reloads every 2 s and, every 15 s, kills the member the gateway
// uses or restarts the one it killed, for duration.
func (s *soak) churn(t *testing.T, duration time.Duration) {
	start := time.Now()
	reloadTick := time.NewTicker(2 * time.Second)
	defer reloadTick.Stop()
	killTick := time.NewTicker(15 * time.Second)
	defer killTick.Stop()
	for time.Since(start) < duration {
		select {
		case <-reloadTick.C:
			s.reloads++
			s.events.add("reload %d", s.reloads)
			saveRenameOver(t, s.h.path, s.config(s.reloads))
			s.h.waitApplied(uint64(s.reloads))
		case <-killTick.C:
			if s.down >= 0 {
				s.restartDown(t)
			} else {
				s.killUsed(t)
			}
		}
	}
}

// restartDown restarts the member killed last.
func (s *soak) restartDown(t *testing.T) {
	s.events.add("restarting member %s", s.c.Members[s.down].ClientAddr())
	if err := s.c.Restart(s.down); err != nil {
		t.Fatalf("restart member %d: %v", s.down, err)
	}
	s.events.add("member %s restarted", s.c.Members[s.down].ClientAddr())
	s.down = -1
}

// killUsed kills the member the gateway is using now.
func (s *soak) killUsed(t *testing.T) {
	used := s.h.usedNow()
	for i, m := range s.c.Members {
		if m.ClientAddr() == used {
			leader := isLeader(t, used)
			s.events.add("killing member %s (leader: %v)", used, leader)
			kill := span{from: time.Now()}
			s.c.Stop(i)
			if kill.to = time.Now(); leader {
				s.leaderKills = append(s.leaderKills, kill)
			}
			s.down, s.killed = i, s.killed+1
		}
	}
}

// judge fails the test on a client error its member does not explain, or
// on a soak that did too little.
func (s *soak) judge(t *testing.T, witnesses map[string]*witness, took time.Duration) {
	var explained, unexplained []string
	for _, f := range s.failures {
		members := s.conns.endpoints(f.conns)
		if why := f.explain(members, witnesses, s.leaderKills); why != "" {
			explained = append(explained, why)
			continue
		}
		unexplained = append(unexplained, fmt.Sprintf("%s\nevents around it:\n%s", f.describe(members), s.events.around(f.start, f.end)))
	}
	t.Logf("soak %s: %d ok operations, %d reloads, %d member kills, %d errors explained by their member, %d unexplained",
		took.Round(time.Second), s.ops.Load(), s.reloads, s.killed, len(explained), len(unexplained))
	for _, e := range explained {
		t.Log(e)
	}
	if len(unexplained) > 0 {
		t.Fatalf("%d client errors on members that answered their witness (the gateway's fault); first: %s", len(unexplained), unexplained[0])
	}
	if s.killed == 0 || s.reloads < 10 || s.ops.Load() < 1000 {
		t.Fatalf("the soak did too little: %d kills, %d reloads, %d operations", s.killed, s.reloads, s.ops.Load())
	}
}

// isLeader reports whether the member at addr is its cluster's leader, as
// it says itself.
func isLeader(t *testing.T, addr string) bool {
	t.Helper()
	st := testutil.MemberStatus(t, addr)
	return st.Leader == st.Header.MemberId
}

// soakClient returns an etcd client of addr and the local address of its
// current connection to the gateway, which the gateway logs as the
// connection's client.
func soakClient(t *testing.T, addr string) (*clientv3.Client, func() string) {
	t.Helper()
	var local atomic.Value
	local.Store("")
	dial := func(ctx context.Context, a string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			local.Store(conn.LocalAddr().String())
		}
		return conn, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, func() string { return local.Load().(string) }
}

// span is a stretch of time.
type span struct{ from, to time.Time }

// failedOp is a client operation (a put and a get) that failed.
type failedOp struct {
	client     int
	start, end time.Time
	// conns are the local addresses of the client's connection to the
	// gateway when the operation started and when it failed.
	conns []string
	err   error
}

// explain returns why f failed when a member it reached failed or stalled
// its witness during f, else "". With no known member (the client had no
// connection through the gateway), any member's witness counts.
func (f failedOp) explain(members []string, witnesses map[string]*witness, leaderKills []span) string {
	for _, k := range leaderKills {
		if !k.from.After(f.end) && !k.to.Before(f.start) {
			return fmt.Sprintf("%s: explained: the leader was killed from %s to %s, during the operation", f.describe(members), k.from.Format("15:04:05.000"), k.to.Format("15:04:05.000"))
		}
	}
	candidates := members
	if len(candidates) == 0 {
		for addr := range witnesses {
			candidates = append(candidates, addr)
		}
	}
	for _, m := range candidates {
		if w := witnesses[m]; w != nil {
			if bad, ok := w.badDuring(f.start, f.end); ok {
				return fmt.Sprintf("%s: explained: its member's witness: %s", f.describe(members), bad)
			}
		}
	}
	return ""
}

func (f failedOp) describe(members []string) string {
	return fmt.Sprintf("client %d, operation %s to %s on member(s) %v (gateway connections %v): %v",
		f.client, f.start.Format("15:04:05.000"), f.end.Format("15:04:05.000"), members, f.conns, f.err)
}

// connLog reads the gateway's log and keeps, for each client connection,
// the endpoint the gateway connected it to.
type connLog struct {
	opened *regexp.Regexp
	mu     sync.Mutex
	byConn map[string]string
}

func newConnLog() *connLog {
	return &connLog{
		opened: regexp.MustCompile(`msg="connection opened" client="([^"]+)" endpoint="([^"]+)"`),
		byConn: map[string]string{},
	}
}

// Write takes one log line (logrus writes each entry at once).
func (l *connLog) Write(p []byte) (int, error) {
	if m := l.opened.FindSubmatch(p); m != nil {
		l.mu.Lock()
		l.byConn[string(m[1])] = string(m[2])
		l.mu.Unlock()
	}
	return len(p), nil
}

// endpoints returns the endpoints the client connections conns reached,
// without duplicates.
func (l *connLog) endpoints(conns []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range conns {
		if ep, ok := l.byConn[c]; ok && !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	return out
}

// Witness checks: how often, the timeout of one, and how long one may take
// before it counts as a stall.
const (
	witnessEvery   = 100 * time.Millisecond
	witnessTimeout = 2 * time.Second
	witnessSlow    = time.Second
)

// witness asks a member's GET /health (a linearizable read, so it needs a
// leader, as a put does) straight, bypassing the gateway, and records the
// checks that failed or stalled.
type witness struct {
	addr string
	done chan struct{}
	mu   sync.Mutex
	bad  []witnessCheck
}

type witnessCheck struct {
	start, end time.Time
	err        error
}

func (c witnessCheck) String() string {
	return fmt.Sprintf("GET /health from %s to %s: %v", c.start.Format("15:04:05.000"), c.end.Format("15:04:05.000"), c.err)
}

func startWitness(ctx context.Context, addr string) *witness {
	w := &witness{addr: addr, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *witness) run(ctx context.Context) {
	defer close(w.done)
	client := &http.Client{Timeout: witnessTimeout}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(witnessEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := time.Now()
		err := memberHealth(ctx, client, w.addr)
		if ctx.Err() != nil {
			return
		}
		if took := time.Since(start); err == nil && took > witnessSlow {
			err = fmt.Errorf("answered after %s", took.Round(time.Millisecond))
		}
		if err != nil {
			w.mu.Lock()
			w.bad = append(w.bad, witnessCheck{start: start, end: time.Now(), err: err})
			w.mu.Unlock()
		}
	}
}

// memberHealth asks addr's GET /health.
func memberHealth(ctx context.Context, client *http.Client, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// badDuring returns a failed or stalled check that overlaps [from, to].
func (w *witness) badDuring(from, to time.Time) (witnessCheck, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.bad {
		if c.start.Before(to) && c.end.After(from) {
			return c, true
		}
	}
	return witnessCheck{}, false
}

// timeline records the soak's deliberate events, for the failure message.
type timeline struct {
	mu     sync.Mutex
	events []timedEvent
}

type timedEvent struct {
	at   time.Time
	what string
}

func (tl *timeline) add(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, timedEvent{time.Now(), fmt.Sprintf(format, args...)})
}

// around lists the events from 15 s before from to 1 s after to.
func (tl *timeline) around(from, to time.Time) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, e := range tl.events {
		if e.at.After(from.Add(-15*time.Second)) && e.at.Before(to.Add(time.Second)) {
			fmt.Fprintf(&b, "  %s %s\n", e.at.Format("15:04:05.000"), e.what)
		}
	}
	return b.String()
}

// usedNow returns the endpoint with the most open connections.
func (h *harness) usedNow() string {
	best, most := "", int64(-1)
	for _, ep := range h.gw.Group().Listeners()["main"].Pool().Endpoints() {
		if n := ep.OpenConns(); n > most {
			best, most = ep.Addr(), n
		}
	}
	return best
}
