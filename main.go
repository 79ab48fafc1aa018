// Command etcd-gateway is a transparent TCP proxy in front of etcd clusters:
// several named listeners from one config file, each forwarding to the
// members of one cluster, with failover and live reload.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		os.Exit(1)
	}
}

// newRootCmd builds the command tree; out and errOut receive its output.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "etcd-gateway",
		Short:         "A transparent TCP gateway in front of etcd clusters",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.AddCommand(newStartCmd(), newCheckCmd(), newVersionCmd())
	// Print errors ourselves so that every problem is on its own line.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintln(c.ErrOrStderr(), "error:", err)
		return err
	})
	wrapRunE(root)
	return root
}

// wrapRunE makes every subcommand print its error to stderr before
// returning it, since the root silences cobra's own printing.
func wrapRunE(root *cobra.Command) {
	for _, c := range root.Commands() {
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
			}
			return err
		}
	}
}

func newStartCmd() *cobra.Command {
	var path string
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
			return run(ctx, cmd.ErrOrStderr(), snap)
		},
	}
	fl := cmd.Flags()
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

func newCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a config file, resolve its SRV discovery and print the listeners it would start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			snap, err := loadSnapshot(cmd, path, config.Flags{})
			if err != nil {
				return err
			}
			snap.Describe(cmd.OutOrStdout())
			return gateway.CheckDiscovery(cmd.Context(), cmd.OutOrStdout(), snap)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "config file (YAML or TOML)")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, goVersion := "(unknown)", "(unknown)"
			if bi, ok := debug.ReadBuildInfo(); ok {
				v, goVersion = bi.Main.Version, bi.GoVersion
			}
			fmt.Fprintf(cmd.OutOrStdout(), "etcd-gateway %s (%s)\n", v, goVersion)
			return nil
		},
	}
}

// loadSnapshot finds the configuration: --config, else etcd's flags when
// any is given, else $ETCD_GATEWAY_CONFIG, else the default file when it
// exists, else etcd gateway's defaults.
func loadSnapshot(cmd *cobra.Command, path string, f config.Flags) (*config.Snapshot, error) {
	// etcd gateway's own flags, for one listener without a config file.
	etcdFlags := []string{
		"listen-addr", "endpoints", "retry-delay", "discovery-srv",
		"discovery-srv-name", "insecure-discovery", "trusted-ca-file",
	}
	flagsSet := false
	for _, name := range etcdFlags {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
			flagsSet = true
			if path != "" {
				return nil, fmt.Errorf("--config and --%s can't be used together: put the listener in the file", name)
			}
		}
	}
	switch {
	case path != "":
	case flagsSet:
		return config.FromFlags(f)
	case os.Getenv("ETCD_GATEWAY_CONFIG") != "":
		path = os.Getenv("ETCD_GATEWAY_CONFIG")
	default:
		if _, err := os.Stat(config.DefaultConfigPath); err == nil {
			path = config.DefaultConfigPath
		} else if cmd.Name() == "check" {
			return nil, fmt.Errorf("no config file: give --config, set ETCD_GATEWAY_CONFIG or create %s", config.DefaultConfigPath)
		} else {
			return config.FromFlags(f)
		}
	}
	return config.Load(path)
}

// run serves snap until ctx is done, reloading the config file on change
// and on SIGHUP, then drains.
func run(ctx context.Context, logOut io.Writer, snap *config.Snapshot) error {
	gw, err := gateway.Start(ctx, logOut, snap)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return gw.Run(ctx, hup, config.WatchOptions{})
}
