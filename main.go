// Command etcd-gateway is a transparent TCP proxy in front of etcd clusters:
// several named listeners from one config file, each forwarding to the
// members of one cluster, with failover and live reload.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
	"github.com/etcd-gateway/etcd-gateway/gateway"
	"github.com/etcd-gateway/etcd-gateway/gateway/upgrade"
	"github.com/etcd-gateway/etcd-gateway/internal/buildinfo"
)

func main() {
	os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes: a command that failed, and a command line that is wrong
// (unknown command or flag, stray argument).
const (
	exitFailure = 1
	exitUsage   = 2
)

// runCLI runs the command line args and returns the exit code. A mistake
// in the command line itself is reported with the usage of the command it
// concerns, on errOut, so that a typo never fails silently.
func runCLI(args []string, out, errOut io.Writer) int {
	root := newRootCmd(out, errOut)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var re runError
	if errors.As(err, &re) {
		return exitFailure // already printed by the command
	}
	fmt.Fprintln(errOut, "error:", err)
	fmt.Fprint(errOut, cmd.UsageString())
	return exitUsage
}

// runError is the error of a command that ran: its RunE printed it, and it
// is no mistake of the command line.
type runError struct{ error }

func (e runError) Unwrap() error { return e.error }

// newRootCmd builds the command tree; out and errOut receive its output.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "etcd-gateway",
		Short:         "A transparent TCP gateway in front of etcd clusters",
		Version:       version(debug.ReadBuildInfo()),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetVersionTemplate("etcd-gateway {{.Version}}\n")
	root.AddCommand(newStartCmd(), newCheckCmd(), newStatusCmd(), newVersionCmd())
	wrapRunE(root)
	return root
}

// wrapRunE makes every subcommand print its error to stderr, each problem
// on its own line, and mark it as a runError, since the root silences
// cobra's own printing.
func wrapRunE(root *cobra.Command) {
	for _, c := range root.Commands() {
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
				return runError{err}
			}
			return nil
		}
	}
}

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
			opts := gateway.StartOptions{UpgradeSocket: upgrade.SocketPath(upgradeSocket, snap.UpgradeSocket, os.Getenv)}
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

func newCheckCmd() *cobra.Command {
	var path string
	var noDNS bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate a config file, resolve its SRV discovery and host names, and print the listeners it would start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version (as --version does)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "etcd-gateway %s\n", cmd.Root().Version)
			return nil
		},
	}
}

// version describes the build: the release version when the release
// build stamped it (-ldflags -X, see internal/buildinfo), else the module
// version when built as a module (go install ...@v1.2.3), else the VCS
// revision, its time and whether the tree was modified, so that a build
// can always be traced to its source.
func version(bi *debug.BuildInfo, ok bool) string {
	return buildinfo.Describe(buildinfo.Release(), bi, ok)
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
