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
	if f.users < 1 || f.users > 1_000_000 {
		return usageError{fmt.Errorf("--users %d: want 1 to 1000000", f.users)}
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
config_file that points easgate at them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			s, err := sim.Start(sim.Options{Listen: f.listen, Users: f.users, Seed: f.seed, Dir: f.dir,
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
			<-cmd.Context().Done()
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}
