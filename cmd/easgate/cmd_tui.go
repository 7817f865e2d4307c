package main

import (
	"context"

	"github.com/spf13/cobra"

	"easgate/engine"
	"easgate/tui"
)

type consoleFlags struct {
	readOnly bool
	mouse    bool
}

func newTUICmd(g *globals) *cobra.Command {
	var f consoleFlags
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Open the interactive console",
		Long: `Open the interactive console. When easgate run serves the configured store, the
console attaches to it through its control socket; otherwise it embeds the sync engine
on the store, and nothing is synced until you ask (s: full sync).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConsole(cmd, g, f) },
	}
	cmd.Flags().BoolVar(&f.readOnly, "read-only", false, "look only: hide every action that changes Exchange or the store")
	cmd.Flags().BoolVar(&f.mouse, "mouse", false, "use the mouse: the wheel scrolls, a click picks a tab or a row")
	return cmd
}

// runConsole opens the store and adapters and runs the console on them.
func runConsole(cmd *cobra.Command, g *globals, f consoleFlags) error {
	mode := openSync
	if f.readOnly {
		mode = openRead
	}
	a, err := open(cmd.Context(), g, cmd.ErrOrStderr(), mode)
	if err != nil {
		return err
	}
	defer a.close()
	return console(cmd.Context(), a.api, tui.Options{ReadOnly: f.readOnly, Mouse: f.mouse})
}

// console runs the console until the user quits or ctx ends.
func console(ctx context.Context, api engine.API, opts tui.Options) error {
	return tui.Run(ctx, api, opts)
}
