package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newExchangeCmd is being built; see the issue tracker.
func newExchangeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "exchange",
		Short:  "exchange test|devices|scripts|rbac-script (not available yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("easgate exchange is not available in this build yet")
		},
	}
}
