package gateway

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// DiffRequest asks what a config file would change in the running
// gateway, without applying it (`etcd-gateway check --diff`).
type DiffRequest struct {
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

// DiffAnswer is what the file would change: the lines of config.Diff.
// None means a reload of it would change nothing.
type DiffAnswer struct {
	Changes []string `json:"changes,omitempty"`
}

// diffFromControl answers a DiffRequest. It only reads the snapshot in
// force, so it needs no turn of Run's.
func (g *Gateway) diffFromControl(_ context.Context, req DiffRequest) (DiffAnswer, error) {
	if !filepath.IsAbs(req.File) {
		return DiffAnswer{}, fmt.Errorf("%q is not an absolute path: the files it references would be looked for in the gateway's working directory", req.File)
	}
	snap, err := config.Parse(req.File, req.Content)
	if err != nil {
		return DiffAnswer{}, err
	}
	return DiffAnswer{Changes: config.Changes(g.Current(), config.WithFileDigests(snap))}, nil
}
