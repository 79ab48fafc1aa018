package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/gateway/control"
)

// checkDiff is check --diff: what the file named by flag would change in
// the running gateway, which compares it with the configuration in force;
// nothing is applied. An invalid
// file fails as check does, before any call.
func checkDiff(cmd *cobra.Command, flag, socket string, timeout time.Duration) error {
	path, _ := configPath(flag)
	if _, err := config.Load(path); err != nil {
		return err
	}
	content, err := config.ReadFile(path)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	sock, err := controlPath(socket, path, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	var a gateway.DiffAnswer
	if err := control.NewClient(sock).Call(ctx, "diff", gateway.DiffRequest{File: abs, Content: content}, &a); err != nil {
		return fmt.Errorf("%s is valid, but can't be compared with the running gateway: %w", path, err)
	}
	if len(a.Changes) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "no changes")
	}
	for _, line := range a.Changes {
		fmt.Fprintln(cmd.OutOrStdout(), line)
	}
	return nil
}
