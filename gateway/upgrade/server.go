package upgrade

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/internal/unixsock"
)

// Host is the running gateway as the old side of a handover sees it.
type Host interface {
	// Offer returns the listening sockets to pass, each with a descriptor
	// the server closes once sent, and a function that pauses accepting on
	// them and one that resumes it. After a successful Offer the server
	// calls exactly one of resume (the handover failed; it may follow
	// pause) and Done, and the host makes no other change to its sockets
	// until then.
	Offer() (sockets []Socket, pause, resume func(), err error)
	// ExportConns quiesces the connections that can move, in batches of at
	// most size, and gives each to emit as soon as it is quiesced; it
	// stops when emit returns false. left counts the connections that
	// stay (TLS, a destination that didn't take the bytes in time, or not
	// quiesced when emit stopped it). Called after pause.
	ExportConns(size int, emit func([]Conn) bool) (left int)
	// TakeBack forwards again here connections the new process did not
	// take; the host owns their descriptors.
	TakeBack([]Conn)
	// Done tells the host that the new process serves the sockets: the old
	// one stops accepting for good and drains, as at shutdown.
	Done(Summary)
}

// Summary describes one handover, for the log and the metrics of both
// processes.
type Summary struct {
	// PID is the other process's.
	PID int
	// Listeners counts the listeners' sockets passed, Admin whether the
	// admin server's was one of them.
	Listeners int
	Admin     bool
	// Conns counts the connections handed over, Left those left to drain
	// in the old process.
	Conns, Left int
	// Duration is from the first message to the last; of it, Export is
	// the time the old process took to quiesce its connections, and Send
	// the time it spent sending them (the two alternate, a batch at a
	// time).
	Duration, Export, Send time.Duration
	// CPU is the CPU time this process spent meanwhile (user and system,
	// all its threads): on a shared machine, a figure that waiting for
	// the CPU doesn't inflate.
	CPU time.Duration
}

// CPUTime returns the CPU time the process has spent so far (user and
// system); 0 if the system can't tell.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Server is the old side: it listens on the upgrade socket and hands its
// host's sockets to the first new process that completes the protocol.
type Server struct {
	ln   *unixsock.Listener
	log  logrus.FieldLogger
	host Host

	mu   sync.Mutex // one handover at a time
	done chan struct{}
	once sync.Once
}

// Listen binds the upgrade socket at path (unixsock.Listen: over whatever
// is there, the socket of the process this one took over from or a stale
// file, without a moment where the path is missing). Serve must follow.
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
	start, cpu := time.Now(), CPUTime()
	hello, log, ok := s.greet(c)
	if !ok {
		return false
	}
	socks, pause, resume, err := s.host.Offer()
	if err != nil {
		_ = c.send(message{Op: opError, Error: err.Error()}, nil)
		log.WithError(err).Warn("upgrade: handover refused")
		return false
	}
	// From here on exactly one of resume and Done ends the handover.
	err = sendSockets(c, socks)
	for _, sk := range socks {
		_ = sk.File.Close()
	}
	if err == nil {
		_, _, err = c.recv(opReady)
	}
	if err != nil {
		resume()
		log.WithError(err).Warn("upgrade: the new process failed before it was ready; this gateway serves on")
		return false
	}
	hook("old:ready")
	pause()
	var sum Summary
	err = c.send(message{Op: opPaused}, nil)
	if err == nil {
		err = s.handConns(c, &sum)
	}
	if err != nil {
		resume()
		log.WithError(err).WithFields(logrus.Fields{"conns-left-there": sum.Conns, "conns-kept": sum.Left}).
			Warn("upgrade: the new process failed mid-handover; this gateway accepts again and serves on")
		return false
	}
	sum.PID, sum.Duration, sum.CPU = hello.PID, time.Since(start), CPUTime()-cpu
	sum.countSockets(socks)
	log.WithFields(logrus.Fields{"listeners": sum.Listeners, "admin": sum.Admin, "conns": sum.Conns, "left": sum.Left, "duration": sum.Duration.String(),
		"export": sum.Export.String(), "send": sum.Send.String(), "cpu": sum.CPU.String()}).
		Info("upgrade: handed over to the new process; draining")
	s.host.Done(sum)
	return true
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

// countSockets fills Listeners and Admin from the sockets passed.
func (sum *Summary) countSockets(socks []Socket) {
	for _, sk := range socks {
		if sk.Kind == KindAdmin {
			sum.Admin = true
		} else {
			sum.Listeners++
		}
	}
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
