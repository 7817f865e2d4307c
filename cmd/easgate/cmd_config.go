package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"easgate/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the config file"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check the config file; every problem is reported with file:line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := config.PathFrom(g.configPath)
			cfg, err := loadConfig(g, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d Exchange server(s), policy: %s)\n", path, len(cfg.Exchange.Servers), cfg.EnginePolicy().Summary())
			return nil
		},
	})
	return cmd
}
