package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// PlanRequest asks what a config file would change in the running
// gateway, without applying it (`etcd-gateway check --diff`).
type PlanRequest struct {
	// File is the absolute path of the file. The gateway reads it, as a
	// reload would: the same checks on this host, and the content of the
	// files it references as the gateway sees them.
	File string `json:"file"`
}

// PlanAnswer is what the file would change: the lines of config.Diff.
// None means a reload of it would change nothing.
type PlanAnswer struct {
	Changes []string `json:"changes,omitempty"`
}

// planFromControl answers a PlanRequest. It only reads the snapshot in
// force, so it needs no turn of Run's.
func (g *Gateway) planFromControl(_ context.Context, req PlanRequest) (PlanAnswer, error) {
	if !filepath.IsAbs(req.File) {
		return PlanAnswer{}, fmt.Errorf("%q is not an absolute path: the gateway would read it from its own working directory", req.File)
	}
	snap, err := config.Load(req.File)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return PlanAnswer{}, fmt.Errorf("the gateway can't see %s: %w (under systemd, PrivateTmp= and ProtectHome= hide /tmp and /home from it: put the file beside its config file)", req.File, err)
	case errors.Is(err, fs.ErrPermission):
		return PlanAnswer{}, fmt.Errorf("the gateway's user can't read %s: %w", req.File, err)
	case err != nil:
		return PlanAnswer{}, err
	}
	return PlanAnswer{Changes: config.Changes(g.Current(), snap)}, nil
}
