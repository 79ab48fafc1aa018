package upgrade

import (
	"fmt"
	"os"
	"sync"

	"github.com/etcd-gateway/etcd-gateway/listener"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// The connections step follows "serving":
//
//	old → new  conns    {conns, more}  + two descriptors each, in batches
//	new → old  adopted                 the batch is the new process's
//
// The old process quiesced each connection (listener.ExportConns): it no
// longer reads it, and what it held is written. A batch is the new
// process's once the old one hears "adopted": the new one says so before it
// reads a byte, and the old one then closes its descriptors. A batch not
// acknowledged (the new process died) is taken back by the old one, which
// forwards it again (and accepts again). Nothing is read twice: only one
// process at a time reads a connection.

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

// sendConns hands conns over in batches; on error it returns those not
// acknowledged, which are still the caller's.
func sendConns(c conn, conns []Conn) (moved int, notAcked []Conn, err error) {
	for first := true; first || len(conns) > 0; first = false {
		n := min(len(conns), maxConnsPerMessage)
		batch := conns[:n]
		metas := make([]connMeta, n)
		files := make([]*os.File, 0, 2*n)
		for i, cn := range batch {
			metas[i] = connMeta{Listener: cn.Listener, Endpoint: cn.Endpoint, State: cn.State}
			files = append(files, cn.Client, cn.Upstream)
		}
		err := c.send(message{Op: opConns, Conns: metas, More: len(conns) > n}, files)
		if err == nil {
			_, _, err = c.recv(opAdopted)
		}
		if err != nil {
			return moved, conns, err
		}
		for _, cn := range batch {
			cn.Close() // the new process's now
		}
		moved += n
		conns = conns[n:]
	}
	return moved, nil, nil
}

// ReceiveConns takes the connections the old process hands over after
// Serving, and gives each to adopt, which owns its descriptors. A batch is
// adopted on its own goroutine while the next one is received, so adopt
// must be safe for concurrent use; ReceiveConns returns once every batch
// is adopted, with how many connections it took. An error means the old
// process is gone: what it didn't hand over is lost with it.
func (t *Takeover) ReceiveConns(adopt func(Conn)) (int, error) {
	defer t.c.c.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	n := 0
	for {
		m, files, err := t.c.recv(opConns)
		if err != nil {
			return n, err
		}
		if len(files) != 2*len(m.Conns) {
			closeAll(files)
			return n, fmt.Errorf("upgrade: %d connections described, %d descriptors passed", len(m.Conns), len(files))
		}
		// Ours from the acknowledgement on: say so before reading a byte.
		ackErr := t.c.send(message{Op: opAdopted}, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, cm := range m.Conns {
				adopt(Conn{Listener: cm.Listener, ExportedConn: listener.ExportedConn{
					Endpoint: cm.Endpoint,
					Exported: forward.Exported{Client: files[2*i], Upstream: files[2*i+1], State: cm.State},
				}})
			}
		}()
		n += len(m.Conns)
		if ackErr != nil {
			return n, ackErr
		}
		if !m.More {
			return n, nil
		}
	}
}
