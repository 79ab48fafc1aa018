package upgrade

import (
	"errors"
	"fmt"
	"time"

	"github.com/etcd-gateway/etcd-gateway/listener"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// The connections step runs between "paused" and "serving":
//
//	old → new  conns    {conns, more: true}  + two descriptors each, in batches
//	old → new  conns    {more: false}        the last: nothing more follows
//	new → old  serving                       every connection passed is the new process's
//
// The old process quiesces its connections a batch at a time
// (Host.ExportConns: it no longer reads them, and what it held is
// written), sends the batch at once, and quiesces the next while the new
// process takes it; the ones not quiesced yet go on forwarding meanwhile.
// It keeps its own copy of every descriptor it sent.
//
// Ownership is decided by one message, "serving", and by who closed the
// conversation:
//   - the new process forwards nothing before it sent "serving"; after
//     the last batch it always sends it and forwards everything it took;
//   - the old process hears "serving" (it closes its copies) or sees the
//     new one close the conversation without it (the new process died or
//     refused: it takes every connection it sent back, and accepts
//     again). Both are exact: the conversation delivers in order, so a
//     "serving" sent is read before the end;
//   - if the old one dies mid-step (the new one reads the end before the
//     last batch), the new one forwards what it took, and serves;
//   - a step that times out (the other process hung, alive) never hands a
//     connection back: the old process then leaves what it sent to the new
//     one (closes its copies) and accepts again; the new one, timing out
//     before the last batch, closes what it took, and the old one, seeing
//     the conversation end, takes it back. No connection is ever forwarded
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

// connMeta is what a Conn says on the wire, beside its descriptors.
type connMeta struct {
	Listener string            `json:"listener"`
	Endpoint string            `json:"endpoint"`
	State    forward.PairState `json:"state"`
}

// connsSent is the old side of the connections step: what it sent so far,
// and the batch that failed to leave (still the old process's).
type connsSent struct {
	c          conn
	sent, kept []Conn
	sending    time.Duration // time spent in send, of the whole step
	err        error
}

// emit sends a batch the host quiesced; false stops the export.
func (s *connsSent) emit(batch []Conn) bool {
	t0 := time.Now()
	metas := make([]connMeta, len(batch))
	fds := make([]int, 0, 2*len(batch))
	for i, cn := range batch {
		metas[i] = connMeta{Listener: cn.Listener, Endpoint: cn.Endpoint, State: cn.State}
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

// handConns runs the old side of the connections step and fills sum's
// Conns, Left, Export and Send. It returns nil once the new process
// serves; otherwise what the host gets back (TakeBack) follows the rule
// above.
func (s *Server) handConns(c conn, sum *Summary) error {
	t0 := time.Now()
	st := &connsSent{c: c}
	sum.Left = s.host.ExportConns(maxConnsPerMessage, st.emit)
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
	s.host.TakeBack(back)
	return err
}

// closeConns closes conns' descriptors.
func closeConns(conns []Conn) {
	for _, cn := range conns {
		cn.Close()
	}
}

// ReceiveConns takes the connections the old process hands over after
// "paused", up to its last batch, and gives each batch to prepare as it
// comes (the old process quiesces the next one meanwhile); prepare owns
// the batch from then on. Serving follows. By the rule above, what
// prepare got is the caller's to forward once Serving returns if Ours(err);
// otherwise the caller closes it all, and the old process takes it back.
func (t *Takeover) ReceiveConns(prepare func([]Conn)) error {
	for first := true; ; first = false {
		m, fds, err := t.c.recv(opConns)
		if err == nil && len(fds) != 2*len(m.Conns) {
			closeAll(fds)
			err = fmt.Errorf("upgrade: %d connections described, %d descriptors passed", len(m.Conns), len(fds))
		}
		if err != nil {
			return err
		}
		batch := make([]Conn, len(m.Conns))
		for i, cm := range m.Conns {
			batch[i] = Conn{Listener: cm.Listener, ExportedConn: listener.ExportedConn{
				Endpoint: cm.Endpoint,
				Exported: forward.Exported{Client: fds[2*i], Upstream: fds[2*i+1], State: cm.State},
			}}
		}
		if len(batch) > 0 {
			prepare(batch)
		}
		if !m.More {
			return nil
		}
		if first {
			hook("new:conns")
		}
	}
}

// Ours reports whether, after ReceiveConns returned err, the connections
// it passed on are the new process's to forward: it took the last batch,
// or the old process is gone (it takes nothing back).
func Ours(err error) bool { return err == nil || errors.Is(err, errGone) }
