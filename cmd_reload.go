package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/gateway/control"
)

// newReloadCmd is `etcd-gateway reload`: re-read the file now and say what
// came of it, where a SIGHUP says nothing.
func newReloadCmd() *cobra.Command {
	var path, socket string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Ask the running gateway to re-read its config file now, and print what came of it: applied, unchanged or rejected",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, named := configPath(path)
			req := gateway.ReloadRequest{}
			if named {
				req.File = path
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			sock, err := controlPath(socket, path, named)
			if err != nil {
				return err
			}
			var a gateway.ReloadAnswer
			if err := control.NewClient(sock).Call(ctx, "reload", req, &a); err != nil {
				return err
			}
			return printReload(cmd, a)
		},
	}
	configFlag(cmd, &path)
	controlFlags(cmd, &socket, &timeout)
	return cmd
}

// printReload prints a reload's outcome; a rejected file is an error.
func printReload(cmd *cobra.Command, a gateway.ReloadAnswer) error {
	if a.Rejected() {
		return fmt.Errorf("rejected: the running configuration stays: %s", a.Error)
	}
	fmt.Fprintln(cmd.OutOrStdout(), a.Result)
	for _, line := range a.Changes {
		fmt.Fprintln(cmd.OutOrStdout(), line)
	}
	return nil
}

// controlFlags adds the flags of a command that calls the control socket.
func controlFlags(cmd *cobra.Command, socket *string, timeout *time.Duration) {
	socketFlag(cmd, socket)
	cmd.Flags().DurationVar(timeout, "timeout", 30*time.Second, "how long to wait for the gateway's answer")
}

// socketFlag adds --control-socket.
func socketFlag(cmd *cobra.Command, socket *string) {
	cmd.Flags().StringVar(socket, "control-socket", "", "the running gateway's control socket (default: the config file's control-socket, else "+control.DefaultPath+")")
}

// configFlag adds --config, the file whose control-socket key says where
// a control command calls.
func configFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "config", "", "the gateway's config file, whose control-socket key says where to call (default $ETCD_GATEWAY_CONFIG, else "+config.DefaultConfigPath+")")
}

// configPath is the config file a control command means: --config, else
// $ETCD_GATEWAY_CONFIG, else the default file; named says whether the
// caller named it (the gateway then checks it runs that file).
func configPath(flag string) (path string, named bool) {
	if flag != "" {
		return flag, true
	}
	if env := os.Getenv("ETCD_GATEWAY_CONFIG"); env != "" {
		return env, true
	}
	return config.DefaultConfigPath, false
}

// controlPath is where a control command calls: --control-socket, else
// the control-socket key of the file at path, else control.DefaultPath. A
// file named that can't be parsed hides its key: that is an error.
func controlPath(flag, path string, named bool) (string, error) {
	if flag != "" {
		return flag, nil
	}
	key, err := config.ControlSocketOf(path)
	if err != nil && named {
		return "", fmt.Errorf("%w (the control-socket key can't be read from it: give --control-socket)", err)
	}
	return control.ClientPath("", key), nil
}
