package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/handover"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// StartOptions is what a process's start adds to its configuration.
type StartOptions struct {
	// UpgradeSocket is the upgrade socket's path, resolved from the flag,
	// the key and systemd's environment (handover.SocketPath); empty: no
	// handover through it, neither from a running gateway nor to a new
	// one.
	UpgradeSocket string
}

// handoverState is the gateway's part in handovers (gateway/handover).
type handoverState struct {
	// received holds the sockets received by this process while Start
	// runs; nil after it.
	received  *handover.Received
	server    *handover.Server
	adminGate atomic.Pointer[listener.Gate]

	// mu is held while a handover gives the sockets, and by Apply, so that
	// a reload never changes the sockets being given.
	mu         sync.Mutex
	stats      *handoverStats
	handedOver atomic.Bool
	done       chan struct{} // closed once handed over: Run shuts down
}

// errHandedOver rejects a reload of a gateway that handed its sockets
// over and drains.
var errHandedOver = errors.New("this gateway handed over to a new process and drains")

// StartWith is Start with the options of a process start. It first
// receives a handover when there is one (handover.Receive: systemd's file
// descriptor store, else the gateway listening on the upgrade socket): the
// listeners of snap, and its admin server, claim the sockets received
// (matched by name and address) instead of binding, paused; once
// everything is built the old gateway stops accepting and this one
// starts. With an upgrade socket it then listens there for the next
// handover.
func StartWith(ctx context.Context, logOut io.Writer, snap *config.Snapshot, opts StartOptions) (*Gateway, error) {
	log := logrus.New()
	log.SetOutput(logOut)
	if err := ConfigureLogger(log, snap); err != nil {
		return nil, err
	}
	sd := handover.FromSystemd()
	incoming := handover.Receive(ctx, sd, opts.UpgradeSocket, func(state string) { notifyLogged(log, state) }, log)
	var received []handover.Socket
	if incoming != nil {
		received = incoming.Sockets()
	}
	g, err := start(ctx, log, snap, sd, received)
	if err != nil {
		if incoming != nil {
			incoming.Abort()
		}
		return nil, err
	}
	if incoming != nil {
		g.finishReceive(incoming)
	}
	if opts.UpgradeSocket != "" {
		srv, err := handover.Listen(opts.UpgradeSocket, handoverHost{g}, log.WithField("component", "upgrade"))
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

// finishReceive ends the handover this process started with, and counts
// it.
func (g *Gateway) finishReceive(incoming handover.Incoming) {
	in := g.up.received
	g.up.received = nil
	if sum, ok := incoming.Finish(in, g.group.Listeners()); ok {
		g.up.stats.received(sum)
	}
}

// listenAdmin returns the admin server's socket at addr: the one received
// from the old gateway, or a new one.
func (g *Gateway) listenAdmin(ctx context.Context, addr string) (net.Listener, error) {
	return g.up.received.ClaimOrBind(handover.KindAdmin, "", addr, func() (net.Listener, error) {
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

// closeUpgradeSocket stops answering on the upgrade socket.
func (g *Gateway) closeUpgradeSocket() {
	if g.up.server != nil {
		g.up.server.Close()
	}
}

// toStore gives the sockets and connections to systemd's file descriptor
// store when the gateway runs under systemd with one (handover.ToStore):
// called at the start of Shutdown.
func (g *Gateway) toStore() {
	if g.lockApply() != nil {
		return // handed over to a new process already
	}
	defer g.up.mu.Unlock()
	if sum, ok := handover.ToStore(handoverHost{g}, g.notify, g.log); ok {
		g.up.stats.gave(sum)
	}
}

// handoverHost is the gateway as the old side of a handover.
type handoverHost struct{ g *Gateway }

// Lock holds reloads off; it refuses a gateway that handed over or stops.
func (h handoverHost) Lock() error {
	g := h.g
	if err := g.lockApply(); err != nil {
		return err
	}
	if g.stopping.Load() {
		g.up.mu.Unlock()
		return errors.New("this gateway is shutting down")
	}
	return nil
}

// Unlock lets reloads run again.
func (h handoverHost) Unlock() { h.g.up.mu.Unlock() }

// Gates are every listener's socket and the admin server's.
func (h handoverHost) Gates() []handover.Gate {
	g := h.g
	gates := g.group.Gates()
	if gate := g.up.adminGate.Load(); gate != nil {
		gates = append(gates, handover.Gate{Kind: handover.KindAdmin, ConfigAddr: g.Current().AdminAddr, Gate: gate})
	}
	return gates
}

// Listeners are the running listeners.
func (h handoverHost) Listeners() map[string]*listener.Listener { return h.g.group.Listeners() }

// HandedOver makes the gateway drain and exit: the new process serves.
func (h handoverHost) HandedOver(sum handover.Summary) {
	g := h.g
	g.up.handedOver.Store(true)
	g.up.stats.gave(sum)
	g.log.WithFields(logrus.Fields{"new-pid": sum.PID, "listeners": sum.Listeners, "admin": sum.Admin, "conns": sum.Conns, "left": sum.Left,
		"duration": sum.Duration.String(), "export": sum.Export.String(), "send": sum.Send.String(), "cpu": sum.CPU.String()}).
		Info("handed over to the new gateway: draining the connections left here")
	close(g.up.done)
}
