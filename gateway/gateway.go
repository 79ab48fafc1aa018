// Package gateway runs the whole gateway for a configuration: it applies
// the first snapshot, applies every later valid snapshot as a diff, and
// drains at shutdown. It also runs the admin server (metrics, health,
// status) and tells systemd where it stands. main.go and the demo both run
// the gateway through it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/admin"
	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/handover"
	"github.com/etcd-gateway/etcd-gateway/gateway/reconcile"
	"github.com/etcd-gateway/etcd-gateway/listener/forward"
)

// Gateway is a running set of listeners and the configuration they follow.
type Gateway struct {
	log   *logrus.Logger
	group *reconcile.Group
	// fwd carries every listener's connections: one per process, its loops
	// sized for the machine; closed last, once every listener drained.
	fwd *forward.Forwarder

	// current is the snapshot in force; written only by the goroutine that
	// runs Start, Apply and Run.
	current atomic.Pointer[config.Snapshot]

	// reloads is what the reloads did so far, replaced whole by the
	// goroutine that runs Start and Run, so that a reader sees one
	// consistent state.
	reloads atomic.Pointer[ReloadStats]

	started  time.Time
	stopping atomic.Bool
	registry *prometheus.Registry
	// reloadDuration times the reloads that apply a changed file.
	reloadDuration prometheus.Histogram
	// admin is the admin server; nil when admin-addr is not set. It is
	// replaced only by the goroutine that runs Start, Apply and Run.
	admin atomic.Pointer[admin.Server]
	// changes dates the endpoints' changes of state for /status.
	changes *endpointChanges
	// page renders the status page at the admin server's /.
	page *statusPage
	// up is the gateway's part in handovers to and from other processes;
	// see handover.go.
	up handoverState
	// ctl is the gateway's control socket; see control.go.
	ctl *controlState
}

// Results of a reload, as /status and the metrics name them.
const (
	resultApplied   = "applied"
	resultRejected  = "rejected"
	resultUnchanged = "unchanged"
)

// ReloadStats counts the reloads since start.
type ReloadStats struct {
	// Applied and Rejected count reloads that changed the running
	// configuration and reloads that were refused. A save that changes
	// nothing counts as neither.
	Applied, Rejected uint64
	// Unchanged counts the valid reads of the file that matched the
	// running configuration (a SIGHUP, a comment edited, a bad save
	// reverted).
	Unchanged uint64
	// LastApplied is when the running configuration last changed (at start
	// when it never did).
	LastApplied time.Time
	// LastError is why the last reload was rejected; empty when the last
	// reload was applied.
	LastError string
	// LastAt and LastResult are the time and result (resultApplied,
	// resultRejected or resultUnchanged) of the last reload; zero and
	// empty before the first.
	LastAt     time.Time
	LastResult string
}

// recordReload counts one reload with its result and, for a rejected one,
// msg. Only the goroutine that runs Run calls it.
func (g *Gateway) recordReload(result, msg string) {
	st := g.Stats()
	st.LastAt, st.LastResult, st.LastError = time.Now(), result, msg
	switch result {
	case resultApplied:
		st.Applied++
		st.LastApplied = st.LastAt
	case resultRejected:
		st.Rejected++
	case resultUnchanged:
		st.Unchanged++
	}
	g.reloads.Store(&st)
}

// Start configures a logger writing to logOut, starts every listener of
// snap and the admin server when snap has one. It returns once every
// listener and the admin server are bound, or with the error of those that
// could not be; then it tells systemd READY=1 (when NOTIFY_SOCKET is set).
func Start(ctx context.Context, logOut io.Writer, snap *config.Snapshot) (*Gateway, error) {
	return StartWith(ctx, logOut, snap, StartOptions{})
}

// start builds the gateway and starts its listeners and admin server;
// sd is what systemd passed (socket units for systemd: listen addresses),
// received the sockets of the handover this process starts with, which
// they claim, paused, instead of binding.
func start(ctx context.Context, log *logrus.Logger, snap *config.Snapshot, sd *handover.Systemd, received []handover.Socket) (*Gateway, error) {
	fwd, err := forward.NewForwarder()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{log: log, group: reconcile.NewGroup(log, fwd, sd), fwd: fwd, started: time.Now(), changes: newEndpointChanges(), page: newStatusPage(), ctl: newControlState()}
	g.up.done = make(chan struct{})
	g.up.stats = newHandoverStats()
	if len(received) > 0 {
		g.up.received = handover.NewReceived(received)
		g.group.ClaimFrom(g.up.received)
		defer g.group.ClaimFrom(nil)
	}
	g.registry = newRegistry(g)
	adm, err := g.prepareAdmin(ctx, snap)
	if err != nil {
		g.up.received.CloseUnclaimed()
		_ = fwd.Close()
		return nil, err
	}
	if _, err := g.group.Apply(ctx, snap); err != nil {
		adm.abort()
		g.up.received.CloseUnclaimed()
		_ = g.group.Shutdown(ctx)
		_ = fwd.Close()
		return nil, err
	}
	g.current.Store(snap)
	g.reloads.Store(&ReloadStats{LastApplied: time.Now()})
	adm.commit()
	go g.changes.run(g)
	return g, nil
}

// Log is the gateway's logger.
func (g *Gateway) Log() *logrus.Logger { return g.log }

// Group is the gateway's running listeners.
func (g *Gateway) Group() *reconcile.Group { return g.group }

// Current is the snapshot in force.
func (g *Gateway) Current() *config.Snapshot { return g.current.Load() }

// Stats returns the reload counters.
func (g *Gateway) Stats() ReloadStats { return *g.reloads.Load() }

// Run serves until ctx is done, then shuts down. When the configuration
// came from a file, Run watches it and applies every change; a value on
// reload (SIGHUP) re-reads the file even when it looks unchanged. Without a
// file, reload requests are logged and ignored.
func (g *Gateway) Run(ctx context.Context, reload <-chan os.Signal, opts config.WatchOptions) error {
	var reloads <-chan config.Reload
	var w *config.Watcher
	if file := g.Current().File; file != "" {
		if opts.Log == nil {
			opts.Log = g.log
		}
		w = config.NewWatcher(file, opts)
		reloads = w.Reloads()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go w.Run(wctx)
	}
	for {
		select {
		case <-ctx.Done():
			return g.Shutdown()
		case <-g.handedOver():
			err := g.Shutdown()
			g.waitAfterHandover(ctx)
			return err
		case <-reload:
			if w == nil {
				g.notifyReloading()
				g.log.Warn("reload requested, but the configuration comes from flags: nothing to reload")
				g.notify("READY=1\nSTATUS=nothing to reload: configured from flags")
				continue
			}
			w.Trigger()
		case r := <-reloads:
			g.Reload(ctx, r)
		case call := <-g.ctl.reloads:
			g.answerReload(ctx, call)
		}
	}
}

// Reload applies one outcome of the config watcher. A rejected file or a
// snapshot that can't be applied leaves the running configuration in place;
// a snapshot equal to the running one changes nothing, but clears the error
// of an earlier rejected reload: the file and the running configuration
// agree again. Around it systemd is told RELOADING=1, then READY=1 (but
// not for the watcher's first read when it finds nothing changed).
func (g *Gateway) Reload(ctx context.Context, r config.Reload) { _ = g.reload(ctx, r) }

// reload is Reload, and says what came of it.
func (g *Gateway) reload(ctx context.Context, r config.Reload) ReloadAnswer {
	log := g.log.WithField("trigger", r.Trigger)
	unchanged := r.Err == nil && reflect.DeepEqual(r.Snapshot, g.Current())
	if unchanged && r.Trigger == "start" {
		// The watcher's first read found the file as Start loaded it.
		log.Debug("config file watched: it matches the running configuration")
		return ReloadAnswer{Result: resultUnchanged}
	}
	g.notifyReloading()
	if unchanged {
		g.recordReload(resultUnchanged, "")
		log.Debug("config file read: nothing changed")
		g.notify("READY=1\nSTATUS=config unchanged")
		return ReloadAnswer{Result: resultUnchanged}
	}
	start, old := time.Now(), g.Current()
	diff, err := g.Apply(ctx, r)
	g.reloadDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		msg := err.Error()
		g.recordReload(resultRejected, msg)
		log.WithError(err).Error("config reload rejected: the running configuration stays")
		g.notify("READY=1\nSTATUS=config reload rejected, the previous configuration serves: " + firstLine(msg))
		return ReloadAnswer{Result: resultRejected, Error: msg}
	}
	g.recordReload(resultApplied, "")
	g.notify(fmt.Sprintf("READY=1\nSTATUS=serving %d listener(s); config reloaded", len(g.Current().Listeners)))
	fields := logrus.Fields{"added": diff.Added, "removed": diff.Removed, "changed": diff.Changed}
	for name, ed := range diff.Endpoints {
		fields["endpoints-added."+name] = ed.Added
		fields["endpoints-removed."+name] = ed.Removed
	}
	log.WithFields(fields).Info("config reloaded")
	return ReloadAnswer{Result: resultApplied, Changes: diffLines(diff, old, r.Snapshot)}
}

// Apply applies the snapshot of r to the running listeners; on error
// nothing changed and the previous snapshot keeps serving.
func (g *Gateway) Apply(ctx context.Context, r config.Reload) (reconcile.Diff, error) {
	if r.Err != nil {
		return reconcile.Diff{}, r.Err
	}
	if err := g.lockApply(); err != nil {
		return reconcile.Diff{}, err
	}
	defer g.up.mu.Unlock()
	adm, err := g.prepareAdmin(ctx, r.Snapshot)
	if err != nil {
		return reconcile.Diff{}, err
	}
	diff, err := g.group.Apply(ctx, r.Snapshot)
	if err != nil {
		adm.abort()
		return diff, err
	}
	if err := ConfigureLogger(g.log, r.Snapshot); err != nil {
		adm.abort()
		return diff, err // unreachable: validated
	}
	g.current.Store(r.Snapshot)
	adm.commit()
	return diff, nil
}

// Shutdown stops accepting, waits up to the configured shutdown-timeout for
// open connections to end, then closes the rest. It tells systemd
// STOPPING=1 first; /healthz answers 503 from then on, and the admin
// server stops last.
func (g *Gateway) Shutdown() error {
	g.stopping.Store(true)
	g.closeControl()
	g.closeUpgradeSocket()
	g.toStore() // handover.go: under systemd with a store, the sockets go there

	g.notify("STOPPING=1\nSTATUS=draining connections")
	timeout := g.Current().ShutdownTimeout
	g.log.WithField("timeout", timeout.String()).Info("shutting down: draining connections")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := g.group.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		g.log.Warn("shutdown timeout reached: remaining connections closed")
		err = nil
	}
	g.stopAdmin()
	g.changes.close()
	_ = g.fwd.Close() // every listener drained: nothing left to forward
	g.log.Info("gateway stopped")
	return err
}

// ConfigureLogger sets log's level and format from snap. Both may change at
// run time.
func ConfigureLogger(log *logrus.Logger, snap *config.Snapshot) error {
	level, err := logrus.ParseLevel(snap.LogLevel)
	if err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	log.SetLevel(level)
	if snap.LogFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	}
	return nil
}
