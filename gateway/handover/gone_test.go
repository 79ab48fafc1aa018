package handover

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns both ends of a SOCK_SEQPACKET conversation.
func pair(t *testing.T) (conn, conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0) // SOCK_CLOEXEC is not on every system
	if err != nil {
		t.Fatal(err)
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	var cs [2]conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "conversation")
		c, err := net.FileConn(f)
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = conn{c.(*net.UnixConn)}
	}
	return cs[0], cs[1]
}

// TestGoneOnlyWhenTheOtherEnds checks the classification the ownership
// rule rests on (conns.go): a conversation the other process closed is
// errGone, on a read (after the messages it sent, which are read first)
// and on a write; a timeout is not, nor is a wrong message.
func TestGoneOnlyWhenTheOtherEnds(t *testing.T) {
	a, b := pair(t)
	if err := b.send(message{Op: opServing}, nil); err != nil {
		t.Fatal(err)
	}
	_ = b.c.Close()
	if _, _, err := a.recv(opServing); err != nil {
		t.Fatalf("a message sent before the end: %v", err)
	}
	if _, _, err := a.recv(opServing); !errors.Is(err, errGone) || !ours(err) {
		t.Fatalf("read after the other end closed: %v, want errGone", err)
	}
	if err := a.send(message{Op: opConns}, nil); !errors.Is(err, errGone) {
		t.Fatalf("write after the other end closed: %v, want errGone", err)
	}

	c, d := pair(t)
	_ = c.c.SetReadDeadline(time.Now())
	_, _, _, _, err := c.c.ReadMsgUnix(make([]byte, 16), nil)
	if err = gone(err); err == nil || errors.Is(err, errGone) || ours(err) {
		t.Fatalf("a timeout: %v, want an error that is not errGone", err)
	}
	if err := d.send(message{Op: opPaused}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.recv(opServing); err == nil || errors.Is(err, errGone) || ours(err) {
		t.Fatalf("a wrong message: %v, want an error that is not errGone", err)
	}
}
