package main

import (
	"context"
	"sync"

	"github.com/spf13/cobra"

	"easgate/config"
	"easgate/engine"
	"easgate/engine/sim"
	"easgate/tui"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		f        simFlags
		headless bool
		mouse    bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Try easgate against a simulated organisation",
		Long: `Start the simulators in-process (Exchange over WinRM, Intune over Graph, an SMTP sink,
all on 127.0.0.1), a temporary store, and the console against them through the real WinRM
and Graph clients. The first full sync starts at once.

--headless runs one full sync instead and prints its run summary as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := sim.Start(sim.Options{Users: f.users, Seed: f.seed})
			if err != nil {
				return err
			}
			defer s.Close()
			cfg, _, err := config.Load(s.Info.ConfigFile)
			if err != nil {
				return err
			}
			a, err := openWith(ctx, cfg, fileLog(cfg), openSync)
			if err != nil {
				return err
			}
			defer a.close()
			if headless {
				rep, err := a.engine.Sync(ctx, engine.SyncRequest{Kind: engine.RunFull, Trigger: engine.TriggerManual, Actor: actor()})
				if err != nil {
					return err
				}
				if err := writeJSON(cmd.OutOrStdout(), rep.Run.Summary()); err != nil {
					return err
				}
				return statusError(&rep.Run)
			}
			return demoConsole(ctx, a.engine, mouse)
		},
	}
	f.register(cmd, false)
	cmd.Flags().BoolVar(&headless, "headless", false, "run one full sync and print the run summary (JSON) instead of the console")
	cmd.Flags().BoolVar(&mouse, "mouse", false, "use the mouse in the console")
	return cmd
}

// demoConsole runs the schedule (a full sync at once) under the console.
func demoConsole(ctx context.Context, eng *engine.Engine, mouse bool) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = eng.Serve(ctx)
	}()
	err := console(ctx, eng, tui.Options{Title: "easgate demo", Mouse: mouse})
	cancel()
	wg.Wait()
	return err
}
