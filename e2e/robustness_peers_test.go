//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcd-gateway/etcd-gateway/internal/testutil"
)

// peerNet is the members' peer network, as etcd's robustness tests build
// it: a relay in front of each member's peer listener, whose address the
// cluster knows as the member's peer URL. A member cut off hears nothing
// from its peers and they nothing from it, so it loses its leader: the
// connections to its relay are blackholed, and so are those it dialed to
// the others' relays, which rafthttp's X-PeerURLs header names.
type peerNet struct {
	mu    sync.Mutex
	cut   map[string]bool // advertised peer URL: cut off
	conns map[*peerConn]struct{}
}

// peerConn is one relayed connection: the member whose relay took it and
// the member that dialed it, by advertised peer URL ("" when the request
// didn't say).
type peerConn struct {
	owner, sender string
	c, up         net.Conn
	// holed says that bytes were dropped: the streams are out of step,
	// and the connection is closed when the member is restored.
	holed atomic.Bool
}

func newPeerNet() *peerNet {
	return &peerNet{cut: map[string]bool{}, conns: map[*peerConn]struct{}{}}
}

// relay starts a relay to target, the member's peer listener, and
// returns its URL, which the member advertises.
func (n *peerNet) relay(t *testing.T, target string) string {
	t.Helper()
	var url atomic.Pointer[string]
	s := testutil.Serve(t, func(c net.Conn) {
		if owner := url.Load(); owner != nil {
			n.serve(c, *owner, target)
		}
	})
	u := "http://" + s.Addr
	url.Store(&u)
	return u
}

// serve relays c to target, dropping its bytes while owner or the member
// that dialed it is cut off.
func (n *peerNet) serve(c net.Conn, owner, target string) {
	br := bufio.NewReaderSize(c, 16<<10)
	pc := &peerConn{owner: owner, sender: peekSender(br), c: c}
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	pc.up = up
	n.track(pc, true)
	defer n.track(pc, false)
	go func() {
		n.copy(pc, up, br)
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	n.copy(pc, c, up)
}

// peekSender reads ahead the head of the first HTTP request on the
// connection, without consuming it, and returns its X-PeerURLs.
func peekSender(br *bufio.Reader) string {
	for {
		head, _ := br.Peek(br.Buffered())
		if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
			return headerValue(string(head[:i]), "X-PeerURLs")
		}
		if br.Buffered() == br.Size() {
			return ""
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return ""
		}
	}
}

// headerValue returns the value of the header name in head, or "".
func headerValue(head, name string) string {
	for line := range strings.Lines(head) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// copy copies src to dst, dropping what arrives while pc is cut off.
func (n *peerNet) copy(pc *peerConn, dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 && n.holes(pc) {
			pc.holed.Store(true)
		} else if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// holes reports whether pc's bytes are dropped now.
func (n *peerNet) holes(pc *peerConn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[pc.owner] || (pc.sender != "" && n.cut[pc.sender])
}

func (n *peerNet) track(pc *peerConn, open bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if open {
		n.conns[pc] = struct{}{}
	} else {
		delete(n.conns, pc)
	}
}

// cutOff blackholes the member whose advertised peer URL is url.
func (n *peerNet) cutOff(url string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[url] = true
}

// restore ends the member's cut, and closes the connections that dropped
// bytes: their peers dial again, on streams in step.
func (n *peerNet) restore(url string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, url)
	for pc := range n.conns {
		if pc.holed.Load() {
			_ = pc.c.Close()
			_ = pc.up.Close()
		}
	}
}
