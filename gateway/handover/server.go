package handover

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/internal/unixsock"
)

// Server is the old side of the socket transport: it listens on the
// upgrade socket and gives its host's sockets and connections to the first
// new process that completes the protocol.
type Server struct {
	ln   *unixsock.Listener
	log  logrus.FieldLogger
	host Host

	mu   sync.Mutex // one handover at a time
	done chan struct{}
	once sync.Once
}

// Listen binds the upgrade socket at path (unixsock.Listen: over whatever
// is there, the socket of the process this one received a handover from
// or a stale file, without a moment where the path is missing). Serve
// must follow.
func Listen(path string, host Host, log logrus.FieldLogger) (*Server, error) {
	ln, err := unixsock.Listen("unixpacket", path, 0)
	if err != nil {
		return nil, fmt.Errorf("upgrade-socket %q: %w", path, err)
	}
	return &Server{ln: ln, log: log, host: host, done: make(chan struct{})}, nil
}

// Serve answers new processes until Close or a handover completes.
func (s *Server) Serve() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.WithError(err).Warn("upgrade socket: accept failed")
			select {
			case <-time.After(100 * time.Millisecond):
			case <-s.done:
				return
			}
			continue
		}
		go func() {
			defer c.Close()
			if s.handle(conn{c}) {
				s.Close()
			}
		}()
	}
}

// Close stops answering and removes the socket's path when it is still
// this process's socket. A handover in progress is not stopped: it runs to
// its end on its own connection.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.ln.Close() // removes the path while it is still ours
	})
}

// handle runs one handover; it reports whether it completed.
func (s *Server) handle(c conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		_ = c.send(message{Op: opError, Error: "this gateway handed over already"}, nil)
		return false
	default:
	}
	start, cpu := time.Now(), cpuTime()
	hello, log, ok := s.greet(c)
	if !ok {
		return false
	}
	gates, socks, err := s.offer()
	if err != nil {
		_ = c.send(message{Op: opError, Error: err.Error()}, nil)
		log.WithError(err).Warn("upgrade: handover refused")
		return false
	}
	// From here on exactly one of s.fail and HandedOver ends the handover.
	err = sendSockets(c, socks)
	closeSockets(socks)
	if err == nil {
		_, _, err = c.recv(opReady)
	}
	if err != nil {
		s.fail(gates)
		log.WithError(err).Warn("upgrade: the new process failed before it was ready; this gateway serves on")
		return false
	}
	hook("old:ready")
	pause(gates)
	sum := Summary{Via: ViaSocket}
	err = c.send(message{Op: opPaused}, nil)
	if err == nil {
		err = s.giveConns(c, &sum)
	}
	if err != nil {
		s.fail(gates)
		log.WithError(err).WithFields(logrus.Fields{"conns-left-there": sum.Conns, "conns-kept": sum.Left}).
			Warn("upgrade: the new process failed mid-handover; this gateway accepts again and serves on")
		return false
	}
	sum.PID, sum.Duration, sum.CPU = hello.PID, time.Since(start), cpuTime()-cpu
	sum.countSockets(socks)
	log.WithFields(logrus.Fields{"listeners": sum.Listeners, "admin": sum.Admin, "conns": sum.Conns, "left": sum.Left, "duration": sum.Duration.String(),
		"export": sum.Export.String(), "send": sum.Send.String(), "cpu": sum.CPU.String()}).
		Info("upgrade: handed over to the new process; draining")
	keepPaths(gates)
	s.host.HandedOver(sum)
	s.host.Unlock()
	return true
}

// offer holds the host's reloads off and gathers its sockets; on error
// the lock is not held.
func (s *Server) offer() ([]Gate, []Socket, error) {
	if err := s.host.Lock(); err != nil {
		return nil, nil, err
	}
	gates := s.host.Gates()
	socks, err := gather(gates)
	if err != nil {
		s.host.Unlock()
		return nil, nil, err
	}
	return gates, socks, nil
}

// fail ends a handover that failed: this gateway accepts again (it may
// have paused), and reloads may run.
func (s *Server) fail(gates []Gate) {
	resume(gates)
	s.host.Unlock()
}

// greet reads the new process's hello, and refuses a version this one
// doesn't speak; ok is false when the handover ends there.
func (s *Server) greet(c conn) (hello message, log logrus.FieldLogger, ok bool) {
	hello, _, err := c.recv(opHello)
	if err != nil {
		s.log.WithError(err).Warn("upgrade: handover refused")
		return hello, nil, false
	}
	log = s.log.WithField("new-pid", hello.PID)
	if hello.Version != Version {
		_ = c.send(message{Op: opError, Error: fmt.Sprintf("protocol version %d not spoken: this gateway speaks %d", hello.Version, Version)}, nil)
		log.WithField("version", hello.Version).Warn("upgrade: handover refused: protocol version not spoken")
		return hello, nil, false
	}
	return hello, log, true
}

// sendSockets sends socks in batches the kernel takes.
func sendSockets(c conn, socks []Socket) error {
	for first := true; first || len(socks) > 0; first = false {
		n := min(len(socks), maxFDsPerMessage)
		batch := socks[:n]
		socks = socks[n:]
		fds := make([]int, n)
		for i, sk := range batch {
			fds[i] = int(sk.File.Fd())
		}
		err := c.send(message{Op: opSockets, PID: os.Getpid(), Sockets: batch, More: len(socks) > 0}, fds)
		runtime.KeepAlive(batch) // the files hold the descriptors sent
		if err != nil {
			return err
		}
	}
	return nil
}
