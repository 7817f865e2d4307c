package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"easgate/engine"
)

func newDevicesCmd(g *globals) *cobra.Command {
	var state, output string
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List device records from the store",
		Long:  "List EAS device records with their MDM records and decisions, as the last sync left them.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outCSV, outText); err != nil {
				return err
			}
			filter, ok := engine.ParseDeviceFilter(state)
			if !ok {
				return usageError{fmt.Errorf("--state %q: want all, unmerged, blocked, quarantined, allowed or exempt", state)}
			}
			a, err := open(cmd.Context(), g, cmd.ErrOrStderr(), openRead)
			if err != nil {
				return err
			}
			defer a.close()
			recs, err := a.api.Devices(cmd.Context(), engine.DeviceQuery{Filter: filter})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch output {
			case outJSON:
				out := make([]engine.DeviceJSON, len(recs))
				for i := range recs {
					out[i] = recs[i].JSON()
				}
				return writeJSON(w, out)
			case outCSV:
				c := newCSV(w, "mailbox", "device_id", "device_type", "device_model", "device_os", "user_agent", "access_state",
					"access_reason", "desired_access", "mdm_id", "link", "compliance", "first_sync", "last_sync", "notified_at", "notify_count", "reason")
				for i := range recs {
					j := recs[i].JSON()
					c.row(j.Mailbox, j.DeviceID, j.DeviceType, j.DeviceModel, j.DeviceOS, j.UserAgent, j.AccessState,
						j.AccessReason, j.DesiredAccess, deref(j.MDMID), deref(j.Link), deref(j.Compliance), rfc(j.FirstSync),
						rfcp(j.LastSync), rfcp(j.NotifiedAt), strconv.Itoa(j.NotifyCount), j.Reason)
				}
				return c.flush()
			}
			t := newTable(w, "MAILBOX", "DEVICE ID", "TYPE", "MODEL", "STATE", "WANT", "MDM", "REASON")
			for i := range recs {
				r := &recs[i]
				mdm := "-"
				if r.Merged() {
					mdm = string(r.Compliance)
				}
				t.row(r.Mailbox, r.DeviceID, r.DeviceType, r.DeviceModel, r.AccessState.Lower(), string(r.Decision.Access), mdm, r.Decision.Reason)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if isTerminal(w) {
				fmt.Fprintf(w, "%d device(s)\n", len(recs))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "all", "all, unmerged, blocked, quarantined, allowed or exempt")
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: json, csv or text")
	return cmd
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
