package main

import (
	"github.com/spf13/cobra"
)

// globals are the flags every command takes.
type globals struct {
	configPath string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "easgate",
		Short: "Keep Exchange ActiveSync open only to devices Intune vouches for",
		Long: `easgate syncs Exchange ActiveSync device partnerships with Intune managed devices and
allows, blocks or quarantines them in Exchange, with a console, a history and a dry run.

Run without a command it opens the console.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConsole(cmd, g, consoleFlags{})
		},
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "config file (default ./easgate.yaml, or $EASGATE_CONFIG)")
	prof := &profiler{}
	pf := root.PersistentFlags()
	pf.StringVar(&prof.cpuPath, "cpuprofile", "", "write a CPU profile of the command to this file")
	pf.StringVar(&prof.memPath, "memprofile", "", "write a heap profile of the command to this file")
	_ = pf.MarkHidden("cpuprofile")
	_ = pf.MarkHidden("memprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return prof.start() }
	root.PersistentPostRunE = func(*cobra.Command, []string) error { return prof.stop() }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newTUICmd(g),
		newDemoCmd(g),
		newSimCmd(g),
		newSyncCmd(g),
		newDevicesCmd(g),
		newRunsCmd(g),
		newConfigCmd(g),
		newNotifyCmd(g),
		newLinkCmd(g),
		newUnlinkCmd(g),
		newExchangeCmd(g),
		newIntuneCmd(g),
		newRunCmd(g),
		newCheckCmd(g),
		newStoreCmd(g),
		newVersionCmd(g),
		newBenchCmd(g),
	)
	return root
}
