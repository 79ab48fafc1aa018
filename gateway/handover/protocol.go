// The socket transport's wire: JSON messages over one SOCK_SEQPACKET
// connection (one message per packet, descriptors attached with
// SCM_RIGHTS), opened by the new process:
//
//	new → old  hello     {version}
//	old → new  sockets   {sockets, more}   + their descriptors, in batches
//	new → old  ready                       the new gateway is built, its sockets paused
//	old → new  paused                      the old one stopped accepting (it keeps its descriptors)
//	old → new  conns     {conns, more}     + two descriptors each, in batches (see conns.go)
//	new → old  serving                     the new one accepts and forwards; the old one drains what is left and exits
//
// Nothing can be lost: until "paused" only the old process accepts; from
// "paused" to "serving" neither does, and the kernel queues connects in the
// listening sockets' backlogs, which both processes share; from "serving"
// only the new one does. If the new process dies or fails before
// "serving", the old one sees its connection end and accepts again on the
// descriptors it kept, and adopts again the connections it gave; if the
// old one dies after "sockets", the new one serves them, and adopts the
// connections it received. An old process that doesn't speak the new
// one's version answers with an error and keeps serving.

package handover

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Version is the protocol version this build speaks; an old process
// refuses a hello of any other (docs/design.md has the versions).
const Version = 2

// Message operations of the socket transport, in protocol order.
const (
	opHello   = "hello"
	opSockets = "sockets"
	opReady   = "ready"
	opPaused  = "paused"
	opConns   = "conns"
	opServing = "serving"
	opError   = "error"
)

// Socket kinds.
const (
	// KindListener is a listener's socket, matched by name and address.
	KindListener = "listener"
	// KindAdmin is the admin server's socket, matched by address.
	KindAdmin = "admin"
)

const (
	// maxFDsPerMessage stays below the kernel's SCM_MAX_FD (253).
	maxFDsPerMessage = 250
	// maxMessage bounds one packet; a batch of sockets' metadata fits.
	maxMessage = 1 << 20
	// stepTimeout bounds how long either side waits for the other's next
	// message: a peer that hangs is a peer that failed.
	stepTimeout = 30 * time.Second
)

// Socket is one listening socket handed from the old process to the new,
// by either transport.
type Socket struct {
	// Kind is KindListener or KindAdmin.
	Kind string `json:"kind"`
	// Name is the listener's name; empty for the admin server.
	Name string `json:"name,omitempty"`
	// ConfigAddr is the address as configured (listen-addr, admin-addr),
	// Addr the address bound: either matches the new configuration.
	ConfigAddr string `json:"config-addr"`
	Addr       string `json:"addr"`
	// Drained are the listener's drained endpoints, which the new process
	// keeps drained: an operator's drain lasts until undrain. A field an
	// old peer of this version ignores and never sends: no new version.
	Drained []string `json:"drained,omitempty"`
	// File is the descriptor: the sender's to send, the receiver's copy.
	File *os.File `json:"-"`
}

// message is one packet of the conversation.
type message struct {
	Version int        `json:"version"`
	Op      string     `json:"op"`
	PID     int        `json:"pid,omitempty"`
	Sockets []Socket   `json:"sockets,omitempty"`
	Conns   []connMeta `json:"conns,omitempty"`
	More    bool       `json:"more,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// conn is one end of the conversation.
type conn struct{ c *net.UnixConn }

// send writes m with descriptors fds attached (SCM_RIGHTS): the kernel
// gives the other process its own copies; fds stay the caller's.
func (c conn) send(m message, fds []int) error {
	if m.Version == 0 {
		m.Version = Version
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("handover: encode %s: %w", m.Op, err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_ = c.c.SetWriteDeadline(time.Now().Add(stepTimeout))
	if _, _, err := c.c.WriteMsgUnix(b, oob, nil); err != nil {
		return fmt.Errorf("handover: send %s: %w", m.Op, gone(err))
	}
	return nil
}

// errGone is the other process closing the conversation: it exited (or
// gave up). A timeout is not: the other process may be alive.
var errGone = errors.New("the other process closed the connection")

// gone marks an error that says the other process closed the
// conversation.
func gone(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("%w: %w", errGone, err)
	}
	return err
}

// recv reads the next message, which must be want (or an error message),
// and the descriptors attached to it, close-on-exec (Go's ReadMsgUnix
// receives with MSG_CMSG_CLOEXEC), as plain descriptors: no Go object,
// no netpoller registration.
func (c conn) recv(want string) (message, []int, error) {
	buf := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(maxFDsPerMessage*4))
	_ = c.c.SetReadDeadline(time.Now().Add(stepTimeout))
	n, oobn, _, _, err := c.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return message{}, nil, fmt.Errorf("handover: waiting for %s: %w", want, gone(err))
	}
	fds, ferr := fdsOf(oob[:oobn])
	if n == 0 {
		closeAll(fds)
		return message{}, nil, fmt.Errorf("handover: waiting for %s: %w", want, errGone)
	}
	var m message
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		closeAll(fds)
		return message{}, nil, fmt.Errorf("handover: waiting for %s: bad message: %w", want, err)
	}
	switch {
	case ferr != nil:
		closeAll(fds)
		return m, nil, fmt.Errorf("handover: %s: %w", m.Op, ferr)
	case m.Op == opError:
		closeAll(fds)
		return m, nil, fmt.Errorf("handover: the other process refused: %s", m.Error)
	case m.Op != want:
		closeAll(fds)
		return m, nil, fmt.Errorf("handover: got %q, want %q", m.Op, want)
	}
	return m, fds, nil
}

// fdsOf returns the descriptors of SCM_RIGHTS messages in oob.
func fdsOf(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var all []int
	var errs []error
	for _, cm := range msgs {
		fds, err := unix.ParseUnixRights(&cm)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all = append(all, fds...)
	}
	return all, errors.Join(errs...)
}

// closeAll closes fds.
func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
