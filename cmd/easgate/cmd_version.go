package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newVersionCmd is being built; see the issue tracker.
func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "version",
		Short:  "version (not available yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("easgate version is not available in this build yet")
		},
	}
}
