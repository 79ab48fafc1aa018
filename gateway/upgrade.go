package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/upgrade"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// StartOptions is what a process's start adds to its configuration.
type StartOptions struct {
	// UpgradeSocket is the upgrade socket's path, resolved from the flag,
	// the key and systemd's environment (upgrade.SocketPath); empty: no
	// handover, neither from a running gateway nor to a new one.
	UpgradeSocket string
}

// upgradeState is the gateway's part in handovers (gateway/upgrade).
type upgradeState struct {
	// inherited holds the sockets passed to this process while Start
	// runs; nil after it.
	inherited *upgrade.Inherited
	server    *upgrade.Server
	adminGate atomic.Pointer[listener.Gate]

	// mu is held from an Offer until the handover ends, and by Apply, so
	// that a reload never changes the sockets being handed over.
	mu         sync.Mutex
	offered    []*listener.Gate
	stats      *upgradeStats
	handedOver atomic.Bool
	done       chan struct{} // closed once handed over: Run shuts down
}

// errHandedOver rejects a reload of a gateway that handed its sockets
// over and drains.
var errHandedOver = errors.New("this gateway handed over to a new process and drains")

// StartWith is Start with the options of a process start. With an upgrade
// socket it first asks the gateway listening there for its sockets: the
// listeners of snap, and its admin server, take them (matched by name and
// address) instead of binding, paused; once everything is built the old
// gateway stops accepting and this one starts, and it listens on the
// upgrade socket for the next handover.
func StartWith(ctx context.Context, logOut io.Writer, snap *config.Snapshot, opts StartOptions) (*Gateway, error) {
	log := logrus.New()
	log.SetOutput(logOut)
	if err := ConfigureLogger(log, snap); err != nil {
		return nil, err
	}
	begin := time.Now()
	var tk *upgrade.Takeover
	var passed []upgrade.Socket
	st := fromStore(log)
	switch {
	case st != nil:
		passed = st.sockets
	case opts.UpgradeSocket != "":
		var err error
		if tk, err = upgrade.Dial(ctx, opts.UpgradeSocket); err != nil {
			// A gateway answered but refused: it serves on. Binding will
			// say whether its addresses are free.
			log.WithError(err).Warn("upgrade: could not take over from the running gateway; binding")
		}
		if tk != nil {
			passed = tk.Sockets()
		}
	}
	g, err := start(ctx, log, snap, passed)
	if err != nil {
		if tk != nil {
			tk.Abort()
		}
		if st != nil {
			for _, c := range st.conns {
				c.Close()
			}
		}
		return nil, err
	}
	switch {
	case tk != nil:
		g.finishTakeover(tk, begin)
	case st != nil:
		g.restoreFromStore(st)
	}
	if opts.UpgradeSocket != "" {
		srv, err := upgrade.Listen(opts.UpgradeSocket, upgradeHost{g}, log.WithField("component", "upgrade"))
		if err != nil {
			log.WithError(err).Error("upgrade socket can't be bound: no new process can take over from this one")
		} else {
			g.up.server = srv
			go srv.Serve()
		}
	}
	g.startControl(snap)
	log.WithFields(logrus.Fields{"config": snap.File, "listeners": len(snap.Listeners)}).Info("gateway started")
	g.notify(fmt.Sprintf("READY=1\nSTATUS=serving %d listener(s)", len(snap.Listeners)))
	return g, nil
}

// finishTakeover tells the old gateway that this one is built, takes its
// connections (sorting each batch by listener while the old one quiesces
// the next), and then accepts and forwards them; at once if the old one
// is gone (it serves what it took, and bound the rest).
func (g *Gateway) finishTakeover(tk *upgrade.Takeover, start time.Time) {
	cpu := upgrade.CPUTime()
	in := g.up.inherited
	g.up.inherited = nil
	unused := in.CloseRest()
	defer in.Resume()
	if err := tk.Ready(); err != nil {
		tk.Abort()
		g.log.WithError(err).Warn("upgrade: the old gateway failed mid-handover; this one serves what it took and bound the rest")
		return
	}
	t0 := time.Now()
	prep := g.preparer()
	err := tk.ReceiveConns(prep.batch)
	receive := time.Since(t0)
	if !upgrade.Ours(err) {
		tk.Abort()
		prep.closeAll()
		g.log.WithError(err).Warn("upgrade: the handover of the connections failed; the old gateway takes them back, and this one serves without them")
		return
	}
	if err != nil {
		g.log.WithError(err).Warn("upgrade: the old gateway failed while handing its connections over; this one serves, with the connections it took")
	}
	sum, err := tk.Serving()
	if err != nil {
		g.log.WithError(err).Warn("upgrade: the old gateway did not hear that this one serves")
	}
	in.Resume()
	t0 = time.Now()
	adopted := prep.adoptAll()
	sum.Duration, sum.CPU = time.Since(start), upgrade.CPUTime()-cpu
	g.up.stats.tookOver(sum, adopted)
	g.logTakeover(takeover{sum: sum, unused: unused, conns: prep.n, adopted: adopted, receive: receive, adopt: time.Since(t0)})
}

// takeover is what the new gateway's summary line of a handover says.
type takeover struct {
	sum                    upgrade.Summary
	unused, conns, adopted int
	receive, adopt         time.Duration
}

// logTakeover logs the summary line of a takeover.
func (g *Gateway) logTakeover(t takeover) {
	sum := t.sum
	g.log.WithFields(logrus.Fields{
		"old-pid": sum.PID, "listeners": sum.Listeners, "admin": sum.Admin, "unused": t.unused,
		"conns": t.conns, "conns-adopted": t.adopted, "conns-closed": t.conns - t.adopted, "duration": sum.Duration.String(),
		"receive": t.receive.String(), "adopt": t.adopt.String(), "cpu": sum.CPU.String(),
	}).Infof("took over from the running gateway (pid %d): %d listener socket(s) passed, admin %v, %d connection(s) adopted, in %s",
		sum.PID, sum.Listeners, sum.Admin, t.adopted, sum.Duration.Round(time.Microsecond))
}

// preparer keeps the connections handed over as they come, with their
// listeners, and adopts them once they are this process's. They stay
// plain descriptors until then: adopting is registering them with a loop.
type preparer struct {
	g     *Gateway
	lns   map[string]*listener.Listener
	n     int // connections received
	ready []prepared
}

// prepared is a connection handed over, and its listener.
type prepared struct {
	l *listener.Listener
	c listener.ExportedConn
}

func (g *Gateway) preparer() *preparer { return &preparer{g: g, lns: g.group.Listeners()} }

// batch keeps a batch of connections; one whose listener this
// configuration no longer has is closed.
func (p *preparer) batch(conns []upgrade.Conn) {
	p.n += len(conns)
	for _, c := range conns {
		l := p.lns[c.Listener]
		if l == nil {
			c.Close()
			continue
		}
		p.ready = append(p.ready, prepared{l, c.ExportedConn})
	}
}

// closeAll closes what was kept: the old gateway forwards it.
func (p *preparer) closeAll() {
	for _, r := range p.ready {
		r.c.Close()
	}
}

// adoptAll forwards what was kept and returns how many it adopted,
// the last received first: the old gateway sends its busiest connections
// last (upgradeHost.ExportConns), and they are the ones waiting.
func (p *preparer) adoptAll() int {
	return parallel(len(p.ready), func(i int) bool {
		r := p.ready[len(p.ready)-1-i]
		if err := r.l.Adopt(r.c); err != nil {
			p.g.log.WithError(err).Warn("upgrade: a connection handed over could not be adopted; closed")
			return false
		}
		return true
	})
}

// parallel runs do(0) to do(n-1) on as many goroutines as there are CPUs
// and returns how many returned true.
func parallel(n int, do func(i int) bool) int {
	var ok, next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if do(int(i)) {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// listenAdmin returns the admin server's socket at addr: the one passed
// by the old gateway, or a new one.
func (g *Gateway) listenAdmin(ctx context.Context, addr string) (net.Listener, error) {
	return g.up.inherited.TakeOrBind(upgrade.KindAdmin, "", addr, func() (net.Listener, error) {
		return (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	})
}

// lockApply is taken by Apply: no reload while a handover runs, nor
// after one.
func (g *Gateway) lockApply() error {
	g.up.mu.Lock()
	if g.up.handedOver.Load() {
		g.up.mu.Unlock()
		return errHandedOver
	}
	return nil
}

// handedOver is closed once the gateway handed over; nil when it has no
// upgrade socket.
func (g *Gateway) handedOver() <-chan struct{} { return g.up.done }

// waitAfterHandover keeps a gateway that handed over and drained alive
// until ctx is done (SIGTERM) when it runs in a Kubernetes pod: a
// container that exits is restarted by the kubelet, and the restarted
// gateway would take the sockets back from the new pod's. The DaemonSet's
// rollout deletes the old pod once the new one is ready.
func (g *Gateway) waitAfterHandover(ctx context.Context) {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return
	}
	g.log.Info("handed over and drained; waiting for the pod to be deleted (SIGTERM)")
	<-ctx.Done()
}

// closeUpgrade stops answering on the upgrade socket.
func (g *Gateway) closeUpgrade() {
	if g.up.server != nil {
		g.up.server.Close()
	}
}

// upgradeHost is the gateway as the old side of a handover.
type upgradeHost struct{ g *Gateway }

// Offer passes every listener's socket and the admin server's.
func (h upgradeHost) Offer() ([]upgrade.Socket, func(), func(), error) {
	g := h.g
	if err := g.lockApply(); err != nil {
		return nil, nil, nil, err
	}
	if g.stopping.Load() {
		g.up.mu.Unlock()
		return nil, nil, nil, errors.New("this gateway is shutting down")
	}
	socks, gates, err := g.group.Sockets()
	if gate := g.up.adminGate.Load(); gate != nil && err == nil {
		var file *os.File
		if file, err = gate.File(); err == nil {
			socks = append(socks, upgrade.Socket{Kind: upgrade.KindAdmin, ConfigAddr: g.Current().AdminAddr, Addr: gate.Addr().String(), File: file})
			gates = append(gates, gate)
		} else {
			for _, sk := range socks {
				_ = sk.File.Close()
			}
		}
	}
	if err != nil {
		g.up.mu.Unlock()
		return nil, nil, nil, err
	}
	g.up.offered = gates
	pause := func() {
		for _, gate := range gates {
			gate.Pause()
		}
	}
	resume := func() {
		for _, gate := range gates {
			gate.Resume()
		}
		g.up.offered = nil
		g.up.mu.Unlock()
	}
	return socks, pause, resume, nil
}

// exportTimeout bounds how long the old gateway waits for a connection's
// destinations to take what it holds before handing it over; one that
// doesn't stays and drains here.
const exportTimeout = time.Second

// ExportConns quiesces the plain connections of every listener in
// batches given to emit, the longest idle first: the busiest go last, and
// stall for the last batch only.
func (h upgradeHost) ExportConns(size int, emit func([]upgrade.Conn) bool) (left int) {
	cands, left := h.candidates()
	for len(cands) > 0 {
		n := min(len(cands), size)
		batch := make([]listener.ExportCandidate, n)
		for i, c := range cands[:n] {
			batch[i] = c.ExportCandidate
		}
		exported, ok := listener.ExportBatch(batch, exportTimeout)
		var conns []upgrade.Conn
		for i, c := range cands[:n] {
			if ok[i] {
				conns = append(conns, upgrade.Conn{Listener: c.name, ExportedConn: exported[i]})
			} else {
				left++
			}
		}
		cands = cands[n:]
		if len(conns) > 0 && !emit(conns) {
			return left + len(cands)
		}
	}
	return left
}

// namedCandidate is a connection that may move, and its listener's name.
type namedCandidate struct {
	listener.ExportCandidate
	name string
}

// candidates returns the connections of every listener that may move,
// the longest idle first, and how many stay.
func (h upgradeHost) candidates() (cands []namedCandidate, left int) {
	for name, l := range h.g.group.Listeners() {
		c, n := l.ExportCandidates()
		left += n
		for _, ec := range c {
			cands = append(cands, namedCandidate{ec, name})
		}
	}
	slices.SortStableFunc(cands, func(a, b namedCandidate) int { return cmp.Compare(b.Idle, a.Idle) })
	return cands, left
}

// TakeBack forwards again connections the new gateway did not take; one
// whose listener is gone is closed.
func (h upgradeHost) TakeBack(conns []upgrade.Conn) {
	lns := h.g.group.Listeners()
	parallel(len(conns), func(i int) bool {
		c := conns[i]
		l := lns[c.Listener]
		if l == nil {
			c.Close()
			return false
		}
		if err := l.Adopt(c.ExportedConn); err != nil {
			h.g.log.WithError(err).Warn("upgrade: a connection taken back could not be forwarded again; closed")
			return false
		}
		return true
	})
}

// Done makes the gateway drain and exit: the new process serves.
func (h upgradeHost) Done(sum upgrade.Summary) {
	g := h.g
	for _, gate := range g.up.offered {
		gate.KeepPath()
	}
	g.up.handedOver.Store(true)
	g.up.stats.handedOver(sum)
	g.up.mu.Unlock()
	g.log.WithFields(logrus.Fields{"new-pid": sum.PID, "listeners": sum.Listeners, "admin": sum.Admin, "conns": sum.Conns, "left": sum.Left,
		"duration": sum.Duration.String(), "export": sum.Export.String(), "send": sum.Send.String(), "cpu": sum.CPU.String()}).
		Info("handed over to the new gateway: draining the connections left here")
	close(g.up.done)
}
