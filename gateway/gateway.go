// Package gateway runs the whole gateway for a configuration: it applies
// the first snapshot, applies every later valid snapshot as a diff, and
// drains at shutdown. main.go and the demo both run the gateway through it.
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

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// Gateway is a running set of listeners and the configuration they follow.
type Gateway struct {
	log   *logrus.Logger
	group *listener.Group

	// current is the snapshot in force; written only by the goroutine that
	// runs Start, Apply and Run.
	current atomic.Pointer[config.Snapshot]

	applied, rejected atomic.Uint64
	lastApplied       atomic.Int64 // unix nanoseconds
	lastErr           atomic.Pointer[string]
}

// ReloadStats counts the reloads since start.
type ReloadStats struct {
	// Applied and Rejected count reloads that changed the running
	// configuration and reloads that were refused. A save that changes
	// nothing counts as neither.
	Applied, Rejected uint64
	// LastApplied is when the running configuration last changed (at start
	// when it never did).
	LastApplied time.Time
	// LastError is why the last reload was rejected; empty when the last
	// reload was applied.
	LastError string
}

// Start configures a logger writing to logOut and starts every listener of
// snap. It returns once every listener is bound, or with the error of the
// first that could not be.
func Start(ctx context.Context, logOut io.Writer, snap *config.Snapshot) (*Gateway, error) {
	log := logrus.New()
	log.SetOutput(logOut)
	if err := ConfigureLogger(log, snap); err != nil {
		return nil, err
	}
	g := &Gateway{log: log, group: listener.NewGroup(log)}
	if _, err := g.group.Apply(ctx, snap); err != nil {
		_ = g.group.Shutdown(ctx)
		return nil, err
	}
	g.current.Store(snap)
	g.lastApplied.Store(time.Now().UnixNano())
	log.WithFields(logrus.Fields{"config": snap.File, "listeners": len(snap.Listeners)}).Info("gateway started")
	return g, nil
}

// Log is the gateway's logger.
func (g *Gateway) Log() *logrus.Logger { return g.log }

// Group is the gateway's running listeners.
func (g *Gateway) Group() *listener.Group { return g.group }

// Current is the snapshot in force.
func (g *Gateway) Current() *config.Snapshot { return g.current.Load() }

// Stats returns the reload counters.
func (g *Gateway) Stats() ReloadStats {
	st := ReloadStats{
		Applied:     g.applied.Load(),
		Rejected:    g.rejected.Load(),
		LastApplied: time.Unix(0, g.lastApplied.Load()),
	}
	if e := g.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

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
		case <-reload:
			if w == nil {
				g.log.Warn("reload requested, but the configuration comes from flags: nothing to reload")
				continue
			}
			w.Trigger()
		case r := <-reloads:
			g.Reload(ctx, r)
		}
	}
}

// Reload applies one outcome of the config watcher. A rejected file or a
// snapshot that can't be applied leaves the running configuration in place;
// a snapshot equal to the running one changes nothing.
func (g *Gateway) Reload(ctx context.Context, r config.Reload) {
	log := g.log.WithField("trigger", r.Trigger)
	if r.Err == nil && reflect.DeepEqual(r.Snapshot, g.Current()) {
		log.Debug("config file read: nothing changed")
		return
	}
	diff, err := g.Apply(ctx, r)
	if err != nil {
		g.rejected.Add(1)
		msg := err.Error()
		g.lastErr.Store(&msg)
		log.WithError(err).Error("config reload rejected: the running configuration stays")
		return
	}
	g.applied.Add(1)
	g.lastErr.Store(nil)
	fields := logrus.Fields{"added": diff.Added, "removed": diff.Removed, "changed": diff.Changed}
	for name, ed := range diff.Endpoints {
		fields["endpoints-added."+name] = ed.Added
		fields["endpoints-removed."+name] = ed.Removed
	}
	log.WithFields(fields).Info("config reloaded")
}

// Apply applies the snapshot of r to the running listeners; on error
// nothing changed and the previous snapshot keeps serving.
func (g *Gateway) Apply(ctx context.Context, r config.Reload) (listener.Diff, error) {
	if r.Err != nil {
		return listener.Diff{}, r.Err
	}
	diff, err := g.group.Apply(ctx, r.Snapshot)
	if err != nil {
		return diff, err
	}
	if err := ConfigureLogger(g.log, r.Snapshot); err != nil {
		return diff, err // unreachable: validated
	}
	g.current.Store(r.Snapshot)
	g.lastApplied.Store(time.Now().UnixNano())
	return diff, nil
}

// Shutdown stops accepting, waits up to the configured shutdown-timeout for
// open connections to end, then closes the rest.
func (g *Gateway) Shutdown() error {
	timeout := g.Current().ShutdownTimeout
	g.log.WithField("timeout", timeout.String()).Info("shutting down: draining connections")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := g.group.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		g.log.Warn("shutdown timeout reached: remaining connections closed")
		err = nil
	}
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
