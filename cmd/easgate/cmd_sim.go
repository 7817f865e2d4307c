package main

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"easgate/engine/sim"
)

// simFlags shape the simulated organisation.
type simFlags struct {
	listen string
	users  int
	seed   uint64
	dir    string
	// What only `easgate sim` takes, for benchmarks.
	costScale  float64
	parallel   int
	applyBatch int
	commands   bool
}

func (f *simFlags) register(cmd *cobra.Command, withListen bool) {
	if withListen {
		cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:0", "address to bind; a non-zero port is WinRM's, Graph and SMTP take the next two")
		cmd.Flags().StringVar(&f.dir, "dir", "", "directory for the CA, secrets, config, store and log (default: a temporary one, removed on exit)")
	}
	cmd.Flags().IntVar(&f.users, "users", 200, "mailboxes in the simulated organisation")
	cmd.Flags().Uint64Var(&f.seed, "seed", 1, "seed of the simulated organisation: the same seed makes the same organisation")
}

func (f *simFlags) check() error {
	switch {
	case f.users < 1 || f.users > 1_000_000:
		return usageError{fmt.Errorf("--users %d: want 1 to 1000000", f.users)}
	case f.costScale < 0 || f.costScale > 10:
		return usageError{fmt.Errorf("--cost-scale %v: want 0 (off) to 10", f.costScale)}
	case f.parallel < 0 || f.parallel > 18:
		return usageError{fmt.Errorf("--parallel %d: want 1 to 18, or 0 for easgate's default", f.parallel)}
	case f.applyBatch < 0 || f.applyBatch > 5000:
		return usageError{fmt.Errorf("--apply-batch %d: want 1 to 5000, or 0 for easgate's default", f.applyBatch)}
	}
	return nil
}

func newSimCmd(g *globals) *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the simulated Exchange, Intune and SMTP sink until interrupted",
		Long: `Run the simulators until SIGINT or SIGTERM: Exchange behind a WinRM (WS-Management)
endpoint, Intune behind Microsoft Graph and its token endpoint (HTTPS with a generated CA),
and an SMTP sink, sharing one generated organisation.

The first line of output is one JSON object with their addresses, credentials and a
config_file that points easgate at them.

--cost-scale turns on the simulators' cost model: every answer takes the time a real
Exchange server or Graph tenant would, times the scale (1 is real time). --commands
serves commands on stdin, one a line, each answered with one JSON line on stdout, and
stops when stdin ends: "counters" (the organisation's counts and every simulator's
counters) and 'churn {"new":N,"compliance":N,"enroll":N,"round":R}' (new partnerships,
compliance flips and enrollments, as between two runs). easgate bench drives them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			s, err := sim.Start(sim.Options{Listen: f.listen, Users: f.users, Seed: f.seed, Dir: f.dir,
				CostScale: f.costScale, Parallel: f.parallel, ApplyBatch: f.applyBatch,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				return err
			}
			defer s.Close()
			line, err := json.Marshal(s.Info)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(line))
			if f.commands {
				return s.ServeCommands(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout())
			}
			<-cmd.Context().Done()
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().Float64Var(&f.costScale, "cost-scale", 0, "turn on the cost model: answers take a real server's time times this (1 = real time; 0 = off)")
	cmd.Flags().IntVar(&f.parallel, "parallel", 0, "exchange.parallel of the written config (0: easgate's default)")
	cmd.Flags().IntVar(&f.applyBatch, "apply-batch", 0, "exchange.apply_batch of the written config (0: easgate's default)")
	cmd.Flags().BoolVar(&f.commands, "commands", false, "serve counters and churn commands on stdin; stop when stdin ends")
	return cmd
}
