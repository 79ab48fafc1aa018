package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/internal/buildinfo"
)

// newVersionCmd is `etcd-gateway version`, the same as --version.
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
