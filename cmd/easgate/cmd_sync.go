package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"easgate/engine"
)

func newSyncCmd(g *globals) *cobra.Command {
	var (
		full, quick, dryRun, yes bool
		output                   string
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Run one sync now",
		Long: `Run one sync now: read Exchange and Intune, decide, plan and apply.

--dry-run computes and prints the plan and applies nothing. A plan that would
block more devices than the safety limits allow is held (exit code 4) unless
--yes approves it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outText); err != nil {
				return err
			}
			kind := engine.RunFull
			if quick {
				kind = engine.RunQuick
			}
			a, err := open(cmd.Context(), g, cmd.ErrOrStderr(), openSync)
			if err != nil {
				return err
			}
			defer a.close()
			rep, err := a.api.Sync(cmd.Context(), engine.SyncRequest{
				Kind: kind, Trigger: engine.TriggerManual, DryRun: dryRun, Approve: yes, Actor: actor(),
			})
			if err != nil {
				return err
			}
			if err := printReport(cmd.OutOrStdout(), rep, output, dryRun); err != nil {
				return err
			}
			return statusError(&rep.Run)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&full, "full", false, "full sync: read everything (the default)")
	f.BoolVar(&quick, "quick", false, "quick sync: read what changed since the last run")
	f.BoolVar(&dryRun, "dry-run", false, "compute and print the plan; apply nothing")
	f.BoolVar(&yes, "yes", false, "apply a plan the safety brake would hold")
	f.StringVarP(&output, "output", "o", outText, "output format: json or text")
	cmd.MarkFlagsMutuallyExclusive("full", "quick")
	return cmd
}

// statusError turns a run's status into the command's exit code.
func statusError(r *engine.Run) error {
	switch r.Status {
	case engine.StatusBraked:
		return exitError{code: exitBraked}
	case engine.StatusFailed:
		return exitError{code: exitFailed, msg: "sync failed: " + r.Error}
	}
	return nil
}

// syncJSON is the run summary, with the plan when one was only computed.
type syncJSON struct {
	engine.RunSummary
	Problems []string     `json:"problems,omitempty"`
	Plan     *engine.Plan `json:"plan,omitempty"`
}

func printReport(w io.Writer, rep *engine.RunReport, output string, withPlan bool) error {
	r := &rep.Run
	if output == outJSON {
		out := syncJSON{RunSummary: r.Summary(), Problems: r.Problems}
		if withPlan || r.Status == engine.StatusBraked {
			out.Plan = rep.Plan
		}
		return writeJSON(w, out)
	}
	c := r.Counts
	fmt.Fprintf(w, "run %s (%s, %s): %s in %s\n", r.ID, r.Kind, r.Trigger, r.Status, r.Duration().Round(1e7))
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", engine.Printable(r.Error))
	}
	fmt.Fprintf(w, "  EAS devices %d (merged %d, unmerged %d) · MDM devices %d\n", c.EASDevices, c.Merged, c.Unmerged, c.MDMDevices)
	fmt.Fprintf(w, "  allowed %d · blocked %d · quarantined %d · exempt %d\n", c.Allowed, c.Blocked, c.Quarantined, c.Exempt)
	fmt.Fprintf(w, "  changes planned %d · applied %d · failed %d · notifications sent %d\n", c.ChangesPlanned, c.ChangesApplied, c.ChangesFailed, c.NotificationsSent)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem: %s\n", engine.Printable(p))
	}
	if p := rep.Plan; p != nil && (withPlan || r.Status == engine.StatusBraked) {
		if p.Brake != nil {
			fmt.Fprintf(w, "  held by the safety brake: %s\n", p.Brake.Reason)
		}
		t := newTable(w, "", "OP", "LIST", "MAILBOX", "DEVICE", "REASON")
		for _, ch := range p.Changes {
			t.row("", string(ch.Op), string(ch.List), ch.Mailbox, ch.DeviceID, ch.Reason)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if len(p.Notifications) > 0 {
			fmt.Fprintf(w, "  notifications: %d (%s)\n", len(p.Notifications), strings.Join(firstTo(p.Notifications, 5), ", "))
		}
	}
	return nil
}

func firstTo(ns []engine.Notification, n int) []string {
	var out []string
	for i, x := range ns {
		if i == n {
			out = append(out, fmt.Sprintf("and %d more", len(ns)-n))
			break
		}
		out = append(out, x.To)
	}
	return out
}
