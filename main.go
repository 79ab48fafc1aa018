// Command etcd-gateway is a transparent TCP proxy in front of etcd clusters:
// several named listeners from one config file, each forwarding to the
// members of one cluster, with failover and live reload.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
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
	root.AddCommand(newStartCmd(), newCheckCmd(), newReloadCmd(), newDrainCmd(), newUndrainCmd(), newStatusCmd(), newSchemaCmd(), newVersionCmd())
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
