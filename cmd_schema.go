package main

import (
	"github.com/spf13/cobra"

	"github.com/etcd-gateway/etcd-gateway/config"
)

// newSchemaCmd is `etcd-gateway schema`: the JSON Schema of the config
// file, for an editor to complete keys and mark errors while the file is
// written, matching the binary at hand.
func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the config file, for editors (completion and error marks; see docs/configuration.md, Editor support)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := config.JSONSchema()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
}
