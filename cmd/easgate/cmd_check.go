package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCheckCmd is being built; see the issue tracker.
func newCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "check",
		Short:  "check (not available yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("easgate check is not available in this build yet")
		},
	}
}
