package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
)

// newCheckCmd is `etcd-gateway check`: what start would run, said before
// it runs, for a person editing the file or a CI job.
func newCheckCmd() *cobra.Command {
	var path, socket string
	var noDNS, diff bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a config file, resolve its SRV discovery and host names, and print the listeners it would start (with --diff: what it would change in the running gateway)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if diff {
				return checkDiff(cmd, path, socket, timeout)
			}
			snap, err := loadSnapshot(cmd, path, config.Flags{})
			if err != nil {
				return err
			}
			snap.Describe(cmd.OutOrStdout())
			if noDNS {
				return nil
			}
			return gateway.CheckDiscovery(cmd.Context(), cmd.OutOrStdout(), snap)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML or TOML)")
	cmd.Flags().BoolVar(&noDNS, "no-dns", false, "validate the file only: resolve no SRV discovery and no host name (on a machine that can't reach the cluster's DNS, such as CI)")
	cmd.Flags().BoolVar(&diff, "diff", false, "print what the file would change in the running gateway, asked on its control socket (listeners, endpoints, keys; + added, - removed, ~ changed), and apply nothing")
	controlFlags(cmd, &socket, &timeout)
	return cmd
}
