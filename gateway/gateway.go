// Package gateway runs the whole gateway for a configuration: it applies
// the first snapshot, applies every later valid snapshot as a diff, and
// drains at shutdown. main.go and the demo both run the gateway through it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/listener"
)

// Gateway is a running set of listeners and the configuration they follow.
type Gateway struct {
	log   *logrus.Logger
	group *listener.Group

	current *config.Snapshot // touched only by Start, Reload and Shutdown's caller
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
	g.current = snap
	log.WithFields(logrus.Fields{"config": snap.File, "listeners": len(snap.Listeners)}).Info("gateway started")
	return g, nil
}

// Log is the gateway's logger.
func (g *Gateway) Log() *logrus.Logger { return g.log }

// Group is the gateway's running listeners.
func (g *Gateway) Group() *listener.Group { return g.group }

// Current is the snapshot in force.
func (g *Gateway) Current() *config.Snapshot { return g.current }

// Apply applies a new snapshot to the running listeners. On error nothing
// changed and the previous snapshot keeps serving.
func (g *Gateway) Apply(ctx context.Context, snap *config.Snapshot) (listener.Diff, error) {
	diff, err := g.group.Apply(ctx, snap)
	if err != nil {
		return diff, err
	}
	if err := ConfigureLogger(g.log, snap); err != nil {
		return diff, err // unreachable: validated
	}
	g.current = snap
	return diff, nil
}

// Shutdown stops accepting, waits up to the configured shutdown-timeout for
// open connections to end, then closes the rest.
func (g *Gateway) Shutdown() error {
	timeout := g.current.ShutdownTimeout
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
