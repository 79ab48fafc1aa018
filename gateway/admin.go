package gateway

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/admin"
	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// adminStopTimeout bounds how long a replaced or stopped admin server
// waits for requests in flight.
const adminStopTimeout = time.Second

// adminChange is a change of the admin server, prepared (its new address
// bound) before the listeners are touched, then committed or aborted with
// them.
type adminChange struct {
	g     *Gateway
	snap  *config.Snapshot
	ln    net.Listener // the new address, bound; nil when it doesn't move
	stop  bool         // stop the running server
	pprof bool
}

// prepareAdmin binds snap's admin-addr when it differs from the running
// one. Its error names the file and the key.
func (g *Gateway) prepareAdmin(ctx context.Context, snap *config.Snapshot) (*adminChange, error) {
	ch := &adminChange{g: g, snap: snap, pprof: snap.AdminPprof}
	cur := ""
	if c := g.Current(); c != nil {
		cur = c.AdminAddr
	}
	if snap.AdminAddr == cur {
		return ch, nil
	}
	ch.stop = true
	if snap.AdminAddr == "" {
		return ch, nil
	}
	ln, err := g.listenAdmin(ctx, snap.AdminAddr) // handover.go: a received socket, or a new one
	if err != nil {
		return nil, fmt.Errorf("%s: key \"admin-addr\": %w", fileLabel(snap.File), err)
	}
	ch.ln = ln
	return ch, nil
}

// abort undoes prepareAdmin.
func (ch *adminChange) abort() {
	if ch.ln != nil {
		_ = ch.ln.Close()
	}
}

// commit stops the old server and starts the new one, as prepared.
func (ch *adminChange) commit() {
	g := ch.g
	if ch.stop {
		g.stopAdmin()
	}
	if ch.ln != nil {
		srv := admin.Start(ch.ln, admin.Options{
			Gatherer: g.registry,
			Health:   g.Health,
			Status:   func() any { return g.Status() },
			Page:     g.page.handler(g),
			Pprof:    ch.pprof,
			Log:      g.log.WithField("component", "admin"),
		})
		g.admin.Store(srv)
		gate, _ := ch.ln.(*listener.Gate)
		g.up.adminGate.Store(gate)
		fields := logrus.Fields{"addr": srv.Addr().String(), "pprof": ch.pprof}
		if tcp, ok := srv.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			g.log.WithFields(fields).Warn("admin server listens on a non-loopback address: anyone who can reach it can read metrics and status" + pprofWarning(ch.pprof))
		} else {
			g.log.WithFields(fields).Info("admin server listening")
		}
	}
	if srv := g.admin.Load(); srv != nil {
		srv.SetPprof(ch.pprof)
	}
}

func pprofWarning(on bool) string {
	if on {
		return ", and profile the process"
	}
	return ""
}

// stopAdmin stops the admin server, if one runs.
func (g *Gateway) stopAdmin() {
	srv := g.admin.Swap(nil)
	g.up.adminGate.Store(nil)
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminStopTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		g.log.WithError(err).Warn("admin server: requests cut short")
	}
	g.log.WithField("addr", srv.Addr().String()).Info("admin server stopped")
}

// AdminAddr is the address the admin server listens on; nil when there is
// none.
func (g *Gateway) AdminAddr() net.Addr {
	if srv := g.admin.Load(); srv != nil {
		return srv.Addr()
	}
	return nil
}

// fileLabel names the configuration's source in errors.
func fileLabel(f string) string {
	if f == "" {
		return "command line"
	}
	return f
}
