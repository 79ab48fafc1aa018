package handover

import (
	"errors"
	"fmt"
	"time"

	"github.com/etcd-gateway/etcd-gateway/listener"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// The socket transport's connections step runs between "paused" and
// "serving":
//
//	old → new  conns    {conns, more: true}  + two descriptors each, in batches
//	old → new  conns    {more: false}        the last: nothing more follows
//	new → old  serving                       every connection sent is the new process's
//
// The old process exports its connections a batch at a time
// (exportConns: it no longer reads them, and what it held is written),
// sends the batch at once, and exports the next while the new process
// receives it; the ones not exported yet go on forwarding meanwhile. It
// keeps its own copy of every descriptor it sent.
//
// Ownership is decided by one message, "serving", and by who closed the
// conversation:
//   - the new process forwards nothing before it sent "serving"; after
//     the last batch it always sends it and adopts everything it received;
//   - the old process hears "serving" (it closes its copies) or sees the
//     new one close the conversation without it (the new process died or
//     refused: it adopts again every connection it sent, and accepts
//     again). Both are exact: the conversation delivers in order, so a
//     "serving" sent is read before the end;
//   - if the old one dies mid-step (the new one reads the end before the
//     last batch), the new one adopts what it received, and serves;
//   - a step that times out (the other process hung, alive) never hands a
//     connection back: the old process then leaves what it sent to the new
//     one (closes its copies) and accepts again; the new one, timing out
//     before the last batch, closes what it received, and the old one,
//     seeing the conversation end, adopts it again. No connection is ever forwarded
//     by both processes, and none twice from the same bytes.

// maxConnsPerMessage is how many connections (two descriptors each) one
// packet carries.
const maxConnsPerMessage = maxFDsPerMessage / 2

// Conn is a connection handed over: its listener's name, and the
// listener's export of it.
type Conn struct {
	Listener string
	listener.ExportedConn
}

// connMeta is what either transport says of a Conn beside its two
// descriptors: on the socket, an entry of a conns message; in the store,
// a part of each descriptor's name.
type connMeta struct {
	Listener string            `json:"listener"`
	Endpoint string            `json:"endpoint"`
	State    forward.PairState `json:"state"`
}

// meta is what c says beside its descriptors.
func (c Conn) meta() connMeta {
	return connMeta{Listener: c.Listener, Endpoint: c.Endpoint, State: c.State}
}

// conn is the connection m describes, on descriptors client and upstream.
func (m connMeta) conn(client, upstream int) Conn {
	return Conn{Listener: m.Listener, ExportedConn: listener.ExportedConn{
		Endpoint: m.Endpoint,
		Exported: forward.Exported{Client: client, Upstream: upstream, State: m.State},
	}}
}

// connsSent is the old side of the connections step: what it sent so far,
// and the batch that failed to leave (still the old process's).
type connsSent struct {
	c          conn
	sent, kept []Conn
	sending    time.Duration // time spent in send, of the whole step
	err        error
}

// emit sends a batch exportConns exported; false stops the export.
func (s *connsSent) emit(batch []Conn) bool {
	t0 := time.Now()
	metas := make([]connMeta, len(batch))
	fds := make([]int, 0, 2*len(batch))
	for i, cn := range batch {
		metas[i] = cn.meta()
		fds = append(fds, cn.Client, cn.Upstream)
	}
	s.err = s.c.send(message{Op: opConns, Conns: metas, More: true}, fds)
	s.sending += time.Since(t0)
	if s.err != nil {
		s.kept = batch
		return false
	}
	s.sent = append(s.sent, batch...)
	if len(s.sent) == len(batch) {
		hook("old:conns")
	}
	return true
}

// giveConns runs the old side of the connections step and fills sum's
// Conns, Left, Export and Send. It returns nil once the new process
// serves; otherwise what this process adopts again follows the rule
// above.
func (s *Server) giveConns(c conn, sum *Summary) error {
	t0 := time.Now()
	st := &connsSent{c: c}
	lns := s.host.Listeners()
	sum.Left = exportConns(lns, maxConnsPerMessage, st.emit)
	sum.Send = st.sending
	sum.Export = time.Since(t0) - st.sending
	err := st.err
	if err == nil {
		err = c.send(message{Op: opConns}, nil)
	}
	if err == nil {
		_, _, err = c.recv(opServing)
	}
	back := st.kept
	if err != nil && errors.Is(err, errGone) {
		back = append(back, st.sent...)
	} else {
		// The new process serves, or hung: what it was sent is forwarded
		// there (or nowhere), never here.
		sum.Conns = len(st.sent)
		closeConns(st.sent)
	}
	sum.Left += len(back)
	adoptAll(lns, back, s.log, "upgrade: a connection the new process did not take")
	return err
}

// closeConns closes conns' descriptors.
func closeConns(conns []Conn) {
	for _, cn := range conns {
		cn.Close()
	}
}

// receiveConns receives the connections the old process gives after
// "paused", up to its last batch, and keeps them in r.conns (the old
// process exports the next batch meanwhile). serving follows. By the
// rule above, they are this process's to adopt once serving returns if
// ours(err); otherwise it closes them all, and the old process adopts
// them again.
func (r *receiver) receiveConns() error {
	for first := true; ; first = false {
		m, fds, err := r.c.recv(opConns)
		if err == nil && len(fds) != 2*len(m.Conns) {
			closeAll(fds)
			err = fmt.Errorf("handover: %d connections described, %d descriptors passed", len(m.Conns), len(fds))
		}
		if err != nil {
			return err
		}
		for i, cm := range m.Conns {
			r.conns = append(r.conns, cm.conn(fds[2*i], fds[2*i+1]))
		}
		if !m.More {
			return nil
		}
		if first {
			hook("new:conns")
		}
	}
}

// ours reports whether, after receiveConns returned err, the connections
// it received are the new process's to adopt: it received the last batch,
// or the old process is gone (it adopts nothing again).
func ours(err error) bool { return err == nil || errors.Is(err, errGone) }
