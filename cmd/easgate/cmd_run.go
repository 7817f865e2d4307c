package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newRunCmd is being built; see the issue tracker.
func newRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "run",
		Short:  "run (not available yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("easgate run is not available in this build yet")
		},
	}
}
