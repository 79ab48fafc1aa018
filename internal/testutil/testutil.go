// Package testutil holds the loopback servers and waiting helpers that the
// gateway's tests share: servers that echo, refuse, blackhole, reset or
// flap, and a poll-with-deadline instead of sleeps.
package testutil

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/internal/loopback"
)

// WaitFor polls cond until it is true or timeout passes, then fails t.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ListenAddr returns a loopback host:port held for the test
// (loopback.Reserve) for code under test that must be told where to listen
// before it binds: a config file, a child gateway, the demo. The code's
// net.Listen binds it; while nothing listens there a connect is refused,
// and nothing else on the machine can take the port until the test ends.
func ListenAddr(t testing.TB) string {
	t.Helper()
	return held(t, loopback.Reserve, "127.0.0.1:0")
}

// RefusingAddr returns a loopback address held for the test where nothing
// listens nor can: a dial is refused at once (loopback.Dead).
func RefusingAddr(t testing.TB) string {
	t.Helper()
	return held(t, loopback.Dead, "127.0.0.1:0")
}

// SharedPort returns a port held for the test on every one of ips
// (loopback.ReserveOn), for a host name whose addresses share one port:
// servers bind it with ServeAt, and an address where none does refuses.
func SharedPort(t testing.TB, ips ...string) int {
	t.Helper()
	holds, err := loopback.ReserveOn(ips...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loopback.CloseAll(holds) })
	return holds[0].Port()
}

// held holds addr with hold until the test ends and returns the held
// address.
func held(t testing.TB, hold func(string) (*loopback.Hold, error), addr string) string {
	t.Helper()
	h, err := hold(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h.Addr()
}

// Server is a loopback TCP server that runs handle for every connection
// and closes what it still holds at cleanup.
type Server struct {
	Addr string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
	// closed is set by Close, under mu: a connection accepted after it
	// is closed at once, not waited for.
	closed bool
	// accepted counts the connections accepted.
	accepted atomic.Int64
}

// Accepted is the number of connections the server has accepted.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Relay starts a server on addr that relays every connection to target.
func Relay(t testing.TB, addr, target string) *Server {
	t.Helper()
	return relay(t, addr, target, func(c, up net.Conn) { _, _ = io.Copy(c, up) })
}

// relay is Relay with back copying the way back, from up, the connection
// to target, to c, the client's.
func relay(t testing.TB, addr, target string, back func(c, up net.Conn)) *Server {
	t.Helper()
	return ServeAt(t, addr, func(c net.Conn) {
		up, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			return
		}
		defer up.Close()
		go func() {
			_, _ = io.Copy(up, c)
			_ = up.(*net.TCPConn).CloseWrite()
		}()
		back(c, up)
	})
}

// Serve starts a server on a free loopback port that runs handle on each
// connection, and closes the connection when handle returns.
func Serve(t testing.TB, handle func(net.Conn)) *Server {
	t.Helper()
	return ServeAt(t, "127.0.0.1:0", handle)
}

// ServeAt is Serve on addr, a loopback host:port (port 0 for any). The
// port stays held until the test ends (ListenAddr), after Close too: a
// stopped server's address refuses connects and is nobody else's.
func ServeAt(t testing.TB, addr string, handle func(net.Conn)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", held(t, loopback.Reserve, addr))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, open: map[net.Conn]struct{}{}}
	go s.accept(handle)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) accept(handle func(net.Conn)) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.open[c] = struct{}{}
		s.wg.Add(1) // under mu, which Close takes before Wait
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			handle(c)
			c.Close()
			s.mu.Lock()
			delete(s.open, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Echo starts a server that echoes every connection. It copies through a
// small buffer, not io.Copy's splice, which would hold a pipe pair (two
// descriptors) per connection in the test process.
func Echo(t testing.TB) *Server { return Serve(t, EchoConn) }

// EchoConn echoes c until it ends, through a small buffer (see Echo).
func EchoConn(c net.Conn) {
	_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4096))
}

// Port is the port s listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// AcceptThenClose starts a server that closes every connection at once.
func AcceptThenClose(t testing.TB) *Server { return Serve(t, func(net.Conn) {}) }

// Resetter starts a server that resets every connection (RST, not FIN).
func Resetter(t testing.TB) *Server {
	return Serve(t, func(c net.Conn) { _ = c.(*net.TCPConn).SetLinger(0) })
}

// RoundTrip writes msg on c and reads the same bytes back within 10 s.
func RoundTrip(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

// Blackhole returns a loopback address whose accept queue is full, so a
// new TCP handshake never completes: a listening socket with backlog 0,
// never accepted from, its queue filled by the test.
func Blackhole(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("accept queue never filled")
	return ""
}

// Flapper is an echo server on a fixed address that comes and goes; the
// address is held for the test (ListenAddr), so it refuses while down.
type Flapper struct {
	Addr string
	stop chan struct{}
	done chan struct{}
}

// Flap starts an echo server that is up for period, then down for period,
// until the test ends (or Stop).
func Flap(t testing.TB, period time.Duration) *Flapper {
	t.Helper()
	f := &Flapper{Addr: ListenAddr(t), stop: make(chan struct{}), done: make(chan struct{})}
	go f.run(period)
	t.Cleanup(f.Stop)
	return f
}

func (f *Flapper) run(period time.Duration) {
	defer close(f.done)
	for {
		ln, err := net.Listen("tcp", f.Addr)
		if err == nil {
			var wg sync.WaitGroup
			var mu sync.Mutex
			var conns []net.Conn
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					wg.Add(1)
					go func() { defer wg.Done(); _, _ = io.Copy(c, c) }()
				}
			}()
			select {
			case <-time.After(period):
			case <-f.stop:
			}
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		}
		select {
		case <-time.After(period):
		case <-f.stop:
			return
		}
	}
}

// Stop ends the flapping, with the server down.
func (f *Flapper) Stop() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// Resources counts this process's goroutines and open descriptors.
type Resources struct{ Goroutines, FDs int }

// Count reads the current Resources.
func Count(t testing.TB) Resources {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return Resources{Goroutines: runtime.NumGoroutine(), FDs: len(ents)}
}

// NoLeak waits until goroutines and descriptors are back to at most before
// plus slack, and fails t if they don't come back. It runs the garbage
// collector while it waits: Go keeps splice pipes in a sync.Pool and closes
// them by finalizer, so a pipe cached for reuse is not a leak.
func NoLeak(t testing.TB, before Resources, slack int) {
	t.Helper()
	var now Resources
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		now = Count(t)
		if now.Goroutines <= before.Goroutines+slack && now.FDs <= before.FDs+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("leak: goroutines %d → %d, descriptors %d → %d: %s\n%s", before.Goroutines, now.Goroutines, before.FDs, now.FDs, fdTargets(), buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fdTargets lists what this process's descriptors point to.
func fdTargets() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			out = append(out, e.Name()+"→"+target)
		}
	}
	return fmt.Sprint(out)
}

// Logger returns a logger that writes to the test's log with -v, and
// nowhere otherwise.
func Logger(t testing.TB) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(io.Discard)
	if testing.Verbose() {
		log.SetOutput(testWriter{t})
		log.SetLevel(logrus.DebugLevel)
	}
	return log
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// Dial connects to addr and closes the connection at the end of the test.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Echoes reports whether a ping through c comes back within 5 s.
func Echoes(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping")); err != nil {
		return false
	}
	buf := make([]byte, 4)
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == "ping"
}

// Get fetches http://addr/path within 10 s and returns the status code and
// the body; a failed request fails the test.
func Get(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// StreamEcho writes a counting pattern on c, an echoed TCP connection,
// until stop is closed, then shuts c's write side; it checks that the echo
// is the same pattern, byte for byte, to EOF, and as long. Each read and
// write has timeout. Tests that move connections while they stream use it
// to prove that nothing was lost, duplicated or reordered.
func StreamEcho(c net.Conn, stop <-chan struct{}, timeout time.Duration) error {
	var sent atomic.Int64
	werr := make(chan error, 1)
	go func() { werr <- writePattern(c, stop, timeout, &sent) }()
	got, err := readPattern(c, timeout)
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if n := sent.Load(); got != n {
		return fmt.Errorf("%d bytes sent, %d came back", n, got)
	}
	return nil
}

// writePattern writes byte i as i%251 until stop is closed, then shuts
// the write side; sent counts what was written.
func writePattern(c net.Conn, stop <-chan struct{}, timeout time.Duration, sent *atomic.Int64) error {
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-stop:
			return c.(*net.TCPConn).CloseWrite()
		default:
		}
		for i := range buf {
			buf[i] = byte((sent.Load() + int64(i)) % 251)
		}
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		n, err := c.Write(buf)
		sent.Add(int64(n))
		if err != nil {
			return err
		}
	}
}

// readPattern reads c to EOF, checking that byte i is i%251, and returns
// how many came.
func readPattern(c net.Conn, timeout time.Duration) (int64, error) {
	var got int64
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		n, err := c.Read(buf)
		for i := range n {
			if buf[i] != byte((got+int64(i))%251) {
				return got, fmt.Errorf("byte %d differs", got+int64(i))
			}
		}
		got += int64(n)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, fmt.Errorf("after %d bytes: %w", got, err)
		}
	}
}
