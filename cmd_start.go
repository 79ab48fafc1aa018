package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/gateway/handover"
)

// newStartCmd is `etcd-gateway start`: the gateway itself, until SIGTERM.
func newStartCmd() *cobra.Command {
	var path, upgradeSocket string
	var f config.Flags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the gateway",
		Long: "Run the gateway on a config file (--config, $ETCD_GATEWAY_CONFIG, or " +
			config.DefaultConfigPath + " when it exists), or on etcd gateway's flags for one listener.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			snap, err := loadSnapshot(cmd, path, f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := gateway.StartOptions{UpgradeSocket: handover.SocketPath(upgradeSocket, snap.UpgradeSocket, os.Getenv)}
			return run(ctx, cmd.ErrOrStderr(), snap, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&upgradeSocket, "upgrade-socket", "", "unix socket through which a new gateway takes over from this one (the upgrade-socket key)")
	fl.StringVar(&path, "config", "", "config file (YAML or TOML)")
	fl.StringVar(&f.ListenAddr, "listen-addr", config.DefaultListenAddr, "listen address (etcd gateway compatible)")
	fl.StringSliceVar(&f.Endpoints, "endpoints", []string{config.DefaultEndpoint}, "comma-separated etcd endpoints (etcd gateway compatible)")
	fl.DurationVar(&f.RetryDelay, "retry-delay", config.DefaultRetryDelay, "delay before a failed endpoint is probed again")
	fl.StringVar(&f.DiscoverySRV, "discovery-srv", "", "DNS domain for SRV discovery of endpoints")
	fl.StringVar(&f.DiscoverySRVName, "discovery-srv-name", "", "suffix of the SRV service name")
	fl.BoolVar(&f.InsecureDiscovery, "insecure-discovery", false, "accept plain _etcd-client SRV records without validation")
	fl.StringVar(&f.TrustedCAFile, "trusted-ca-file", "", "CA that validates endpoints discovered through _etcd-client-ssl")
	return cmd
}

// run serves snap until ctx is done, reloading the config file on change
// and on SIGHUP, then drains.
func run(ctx context.Context, logOut io.Writer, snap *config.Snapshot, opts gateway.StartOptions) error {
	gw, err := gateway.StartWith(ctx, logOut, snap, opts)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return gw.Run(ctx, hup, config.WatchOptions{})
}
