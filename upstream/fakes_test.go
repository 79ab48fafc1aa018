package upstream

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// Answers of a fakeEtcd's /health.
const (
	answerHealthy int32 = iota
	answerNoLeader
	answerHang
)

// fakeEtcd is a loopback HTTP server that answers /health and /version as
// etcd does,
// and accepts any other connection as a client port would. It records when
// each /health request arrived and when its client gave up on it.
type fakeEtcd struct {
	*httptest.Server
	addr   string
	answer atomic.Int32
	// steps, when set, makes each /health request wait for its answer
	// from the test (answerHealthy or answerNoLeader).
	steps chan int32

	// conns counts the connections the server accepted, and those still
	// open.
	conns testutil.ConnCounter

	// versions counts the GET /version requests, which are answered
	// whatever answer says: the process runs.
	versions atomic.Int64
	// pauseVersions is how many GET /version requests to come are left
	// unanswered until their client gives up: a member that paused.
	pauseVersions atomic.Int32

	mu       sync.Mutex
	arrivals []time.Time
	gaveUp   []time.Duration // per hung request: how long until the client left
}

func newFakeEtcd(t *testing.T, tls bool) *fakeEtcd {
	t.Helper()
	f := &fakeEtcd{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.Config.ConnState = f.conns.Hook
	if tls {
		f.StartTLS()
	} else {
		f.Start()
	}
	f.addr = f.Listener.Addr().String()
	t.Cleanup(func() {
		if f.steps != nil {
			close(f.steps)
		}
		f.CloseClientConnections()
		f.Close()
	})
	return f
}

// newSteppedEtcd returns a fakeEtcd whose answers the test gives one by
// one with step.
func newSteppedEtcd(t *testing.T) *fakeEtcd {
	f := newFakeEtcd(t, false)
	f.steps = make(chan int32)
	return f
}

// step answers the next /health request.
func (f *fakeEtcd) step(t *testing.T, answer int32) {
	t.Helper()
	select {
	case f.steps <- answer:
	case <-time.After(10 * time.Second):
		t.Fatal("no health check arrived within 10s")
	}
}

func (f *fakeEtcd) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == versionPath {
		f.versions.Add(1)
		if f.pauseVersions.Add(-1) >= 0 {
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, `{"etcdserver":"3.7.3","etcdcluster":"3.7.0"}`)
		return
	}
	if r.URL.Path != healthPath {
		http.NotFound(w, r)
		return
	}
	start := time.Now()
	f.mu.Lock()
	f.arrivals = append(f.arrivals, start)
	f.mu.Unlock()
	answer := f.answer.Load()
	if f.steps != nil {
		select {
		case a, ok := <-f.steps:
			if !ok {
				return
			}
			answer = a
		case <-r.Context().Done():
			return
		}
	}
	switch answer {
	case answerHealthy:
		_, _ = io.WriteString(w, `{"health":"true","reason":""}`)
	case answerNoLeader:
		http.Error(w, `{"health":"false","reason":"RAFT NO LEADER"}`, http.StatusServiceUnavailable)
	case answerHang:
		<-r.Context().Done()
		f.mu.Lock()
		f.gaveUp = append(f.gaveUp, time.Since(start))
		f.mu.Unlock()
	}
}

// checks returns how many /health requests arrived so far.
func (f *fakeEtcd) checks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.arrivals)
}

func (f *fakeEtcd) arrivalTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.arrivals...)
}

func (f *fakeEtcd) gaveUpAfter() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.gaveUp...)
}

// relay is a loopback TCP relay in front of an address. Frozen, it keeps
// accepting connections but stops copying bytes, in both directions and on
// every connection, as a stopped process whose kernel still completes
// handshakes would.
type relay struct {
	ln     net.Listener
	addr   string
	target string

	mu     sync.Mutex
	thawed chan struct{} // closed while not frozen
	conns  map[net.Conn]struct{}
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, addr: ln.Addr().String(), target: target, thawed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(r.thawed)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

// freeze stops the relay from copying; thaw resumes.
func (r *relay) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.thawed:
		r.thawed = make(chan struct{})
	default:
	}
}

func (r *relay) thaw() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.thawed:
	default:
		close(r.thawed)
	}
}

func (r *relay) gate() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.thawed
}

func (r *relay) close() {
	_ = r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		_ = c.Close()
	}
	select {
	case <-r.thawed:
	default:
		close(r.thawed)
	}
}

func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.serve(c)
	}
}

func (r *relay) serve(c net.Conn) {
	r.track(c)
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		_ = c.Close()
		return
	}
	r.track(up)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { r.copy(ctx, up, c); cancel() }()
	r.copy(ctx, c, up)
	_ = c.Close()
	_ = up.Close()
}

// copy copies src to dst, holding each chunk while the relay is frozen.
func (r *relay) copy(ctx context.Context, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-r.gate():
			case <-ctx.Done():
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

// closerConn is a tracked connection that is only a closer: quiet, and
// owing no answer.
type closerConn struct{ io.Closer }

func (c closerConn) CloseIfQuiet(time.Duration) bool { return c.Close() == nil }
func (closerConn) GoAway() bool                      { return false }
func (closerConn) Unanswered() time.Time             { return time.Time{} }
