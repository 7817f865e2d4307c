package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"easgate/engine"
)

func newRunsCmd(g *globals) *cobra.Command {
	var (
		limit  int
		output string
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "Show the sync run history",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outCSV, outText); err != nil {
				return err
			}
			if limit < 1 {
				return usageError{fmt.Errorf("--limit %d: want 1 or more", limit)}
			}
			a, err := open(cmd.Context(), g, cmd.ErrOrStderr(), openRead)
			if err != nil {
				return err
			}
			defer a.close()
			runs, err := a.api.Runs(cmd.Context(), limit)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch output {
			case outJSON:
				if runs == nil {
					runs = []engine.Run{}
				}
				return writeJSON(w, runs)
			case outCSV:
				c := newCSV(w, "id", "kind", "trigger", "status", "started", "finished", "duration_s", "eas_devices", "merged",
					"unmerged", "allowed", "blocked", "quarantined", "exempt", "changes_planned", "changes_applied", "changes_failed",
					"notifications_sent", "error")
				for _, r := range runs {
					k := r.Counts
					c.row(r.ID, string(r.Kind), string(r.Trigger), string(r.Status), rfc(r.Started), rfc(r.Finished),
						strconv.FormatFloat(r.Duration().Seconds(), 'f', 1, 64), itoa(k.EASDevices), itoa(k.Merged), itoa(k.Unmerged),
						itoa(k.Allowed), itoa(k.Blocked), itoa(k.Quarantined), itoa(k.Exempt), itoa(k.ChangesPlanned),
						itoa(k.ChangesApplied), itoa(k.ChangesFailed), itoa(k.NotificationsSent), r.Error)
				}
				return c.flush()
			}
			t := newTable(w, "STARTED", "KIND", "TRIGGER", "STATUS", "DURATION", "EAS", "UNMERGED", "BLOCKED", "APPLIED", "FAILED", "ERROR")
			for _, r := range runs {
				k := r.Counts
				t.row(r.Started.Local().Format("2006-01-02 15:04:05"), string(r.Kind), string(r.Trigger), string(r.Status),
					r.Duration().Round(10*time.Millisecond).String(), itoa(k.EASDevices), itoa(k.Unmerged), itoa(k.Blocked),
					itoa(k.ChangesApplied), itoa(k.ChangesFailed), r.Error)
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs, newest first")
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: json, csv or text")
	return cmd
}

func itoa(n int) string { return strconv.Itoa(n) }

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func rfcp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return rfc(*t)
}
