package gateway

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// PlanRequest asks what a config file would change in the running
// gateway, without applying it (`etcd-gateway check --diff`).
type PlanRequest struct {
	// File is the file's absolute path, for the messages and the format
	// (by its extension); Content is what the caller read there. The
	// gateway parses the caller's bytes rather than reading the path
	// itself, so that a control-group member can't make it read a file
	// of the gateway's user and answer with its values. The files the
	// content references (certificates, CAs) it digests as a reload
	// would.
	File    string `json:"file"`
	Content []byte `json:"content"`
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
		return PlanAnswer{}, fmt.Errorf("%q is not an absolute path: the files it references would be looked for in the gateway's working directory", req.File)
	}
	snap, err := config.Parse(req.File, req.Content)
	if err != nil {
		return PlanAnswer{}, err
	}
	return PlanAnswer{Changes: config.Changes(g.Current(), config.WithFileDigests(snap))}, nil
}
