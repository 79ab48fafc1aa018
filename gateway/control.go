package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway/control"
	"github.com/etcd-gateway/etcd-gateway/gateway/reconcile"
)

// ReloadRequest asks the running gateway to re-read its config file now.
type ReloadRequest struct {
	// File, when set, is the file the caller means: a gateway that runs
	// another file refuses rather than re-reading its own.
	File string `json:"file,omitempty"`
}

// ReloadAnswer is what came of a ReloadRequest.
type ReloadAnswer struct {
	// Result is resultApplied, resultUnchanged or resultRejected.
	Result string `json:"result"`
	// Changes are the diff's lines (Diff.Lines), for an applied reload.
	Changes []string `json:"changes,omitempty"`
	// Error says why a rejected file was rejected.
	Error string `json:"error,omitempty"`
}

// errShuttingDown turns away a call that came too late.
var errShuttingDown = errors.New("the gateway is shutting down")

// controlState is the control socket and what its calls share with Run.
type controlState struct {
	// server is nil when there is no control socket.
	server *control.Server
	// reloads carries the reload calls to Run; closing done at shutdown
	// turns away the calls waiting for it.
	reloads chan reloadCall
	done    chan struct{}
	close   sync.Once
}

func newControlState() *controlState {
	return &controlState{reloads: make(chan reloadCall), done: make(chan struct{})}
}

// Rejected reports whether the file was rejected.
func (a ReloadAnswer) Rejected() bool { return a.Result == resultRejected }

// reloadCall is a ReloadRequest on its way to the goroutine that runs Run,
// the only one that applies snapshots.
type reloadCall struct {
	file  string
	reply chan ReloadAnswer
}

// startControl binds the control socket when snap (or systemd) names one;
// a socket that can't be bound is logged, and the gateway serves on.
func (g *Gateway) startControl(snap *config.Snapshot) {
	path := control.SocketPath(snap.ControlSocket, os.Getenv)
	if path == "" {
		return
	}
	access, err := controlAccess(snap)
	if err == nil {
		g.ctl.server, err = control.Listen(path, access, g.controlCalls(), g.log.WithField("component", "control"))
	}
	if err != nil {
		g.log.WithError(err).Error("control socket can't be bound: reload and drain from the CLI are off")
		return
	}
	go g.ctl.server.Serve()
}

// controlAccess is who may use the control socket, from control-group.
func controlAccess(snap *config.Snapshot) (control.Access, error) {
	if snap.ControlGroup == "" {
		return control.Access{}, nil
	}
	gid, err := config.LookupGID(snap.ControlGroup)
	if err != nil {
		return control.Access{}, fmt.Errorf("control-group: %w", err)
	}
	return control.Access{Group: &gid, GroupName: snap.ControlGroup}, nil
}

// controlCalls are the calls the control socket answers.
func (g *Gateway) controlCalls() http.Handler {
	mux := http.NewServeMux()
	control.Handle(mux, "reload", g.reloadFromControl)
	control.Handle(mux, "diff", g.diffFromControl)
	control.Handle(mux, "drain", g.drainFromControl)
	control.Handle(mux, "undrain", g.undrainFromControl)
	return mux
}

// closeControl stops answering calls, waiting a little for those in
// progress.
func (g *Gateway) closeControl() {
	g.ctl.close.Do(func() {
		close(g.ctl.done)
		if g.ctl.server == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		g.ctl.server.Close(ctx)
	})
}

// reloadFromControl hands a reload request to Run and waits for what came
// of it.
func (g *Gateway) reloadFromControl(ctx context.Context, req ReloadRequest) (ReloadAnswer, error) {
	if err := g.sameFile(req.File); err != nil {
		return ReloadAnswer{}, err
	}
	call := reloadCall{file: g.Current().File, reply: make(chan ReloadAnswer, 1)}
	select {
	case g.ctl.reloads <- call:
	case <-g.ctl.done:
		return ReloadAnswer{}, errShuttingDown
	case <-ctx.Done():
		return ReloadAnswer{}, ctx.Err()
	}
	return <-call.reply, nil // Run answers every call it takes
}

// sameFile refuses a request for a file other than the running one.
func (g *Gateway) sameFile(file string) error {
	running := g.Current().File
	if running == "" {
		return errors.New("this gateway is configured from flags: there is no file to reload")
	}
	if file == "" {
		return nil
	}
	want, _ := filepath.Abs(file)
	have, _ := filepath.Abs(running)
	if want != have {
		return fmt.Errorf("this gateway runs %s, not %s", running, file)
	}
	return nil
}

// answerReload reads the call's file now and applies it as a reload;
// only the goroutine that runs Run calls it.
func (g *Gateway) answerReload(ctx context.Context, call reloadCall) {
	snap, err := config.Load(call.file)
	call.reply <- g.reload(ctx, config.Reload{Snapshot: snap, Err: err, Trigger: "control"})
}

// diffLines are a reload's changes, one a line (see config.Diff.Lines):
// the listeners the group added, removed and changed, with the keys of
// each that changed from old to next, and the endpoint addresses the
// group added and removed (resolved, where the file may name hosts).
func diffLines(d reconcile.Diff, old, next *config.Snapshot) []string {
	c := config.Compare(old, next)
	changed := make([]config.ListenerDiff, 0, len(d.Changed))
	for _, n := range slices.Sorted(slices.Values(d.Changed)) {
		ld := c.Listener(n)
		ld.EndpointsAdded, ld.EndpointsRemoved = d.Endpoints[n].Added, d.Endpoints[n].Removed
		changed = append(changed, ld)
	}
	c.Added, c.Removed, c.Changed = d.Added, d.Removed, changed
	return c.Lines()
}
