package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newIntuneCmd is being built; see the issue tracker.
func newIntuneCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "intune",
		Short:  "intune test|devices (not available yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("easgate intune is not available in this build yet")
		},
	}
}
