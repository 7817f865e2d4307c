package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newStoreCmd is being built; see the issue tracker.
func newStoreCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "store",
		Short:  "store backup FILE|check|compact (not available yet)",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("easgate store is not available in this build yet")
		},
	}
}
