package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"easgate/engine"
)

func newNotifyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "notify", Short: "Enrollment notifications"}
	var output string
	resend := &cobra.Command{
		Use:   "resend DEVICE...",
		Short: "Send the enrollment notification again, now",
		Long: `Send the enrollment notification to the users of the named devices now, whatever
their resend schedule says. DEVICE is mailbox/deviceId, or a device ID alone when only one
mailbox has it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, outJSON, outText); err != nil {
				return err
			}
			return withAPI(cmd, g, openSync, func(api engine.API) error {
				keys, err := resolveDevices(cmd.Context(), api, args)
				if err != nil {
					return err
				}
				res, err := api.Resend(cmd.Context(), engine.ResendRequest{Devices: keys, Actor: actor()})
				if err != nil {
					return err
				}
				if output == outJSON {
					if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
						return err
					}
				}
				failed := 0
				for _, r := range res {
					if !r.OK {
						failed++
					}
					if output == outText {
						if r.OK {
							fmt.Fprintf(cmd.OutOrStdout(), "sent to %s for %s\n", engine.Printable(r.To), r.Device)
						} else {
							fmt.Fprintf(cmd.OutOrStdout(), "failed for %s (%s): %s\n", r.Device, engine.Printable(r.To), engine.Printable(r.Error))
						}
					}
				}
				if failed > 0 {
					return exitError{code: exitFailed, msg: fmt.Sprintf("%d of %d notification(s) failed", failed, len(res))}
				}
				return nil
			})
		},
	}
	resend.Flags().StringVarP(&output, "output", "o", outText, "output format: json or text")
	preview := &cobra.Command{
		Use:   "preview DEVICE",
		Short: "Show the enrollment notification a device's user would get",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, g, openSync, func(api engine.API) error {
				keys, err := resolveDevices(cmd.Context(), api, args)
				if err != nil {
					return err
				}
				p, err := api.Preview(cmd.Context(), keys[0])
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "To: %s\nSubject: %s\n\n%s\n", engine.Printable(p.To), engine.Printable(p.Subject), p.Text)
				return nil
			})
		},
	}
	cmd.AddCommand(resend, preview)
	return cmd
}

func newLinkCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "link DEVICE MDM_ID",
		Short: "Merge an EAS record with an Intune record by hand",
		Long: `Link an EAS partnership to an Intune managed device that never reported its EAS device ID
(non-Samsung Android, typically). The link is stored, survives syncs, and the device is
reconciled at once. DEVICE is mailbox/deviceId, or a device ID alone when only one mailbox has it.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, g, openSync, func(api engine.API) error {
				keys, err := resolveDevices(cmd.Context(), api, args[:1])
				if err != nil {
					return err
				}
				if err := api.Link(cmd.Context(), engine.LinkRequest{Device: keys[0], MDMID: args[1], Actor: actor()}); err != nil {
					return err
				}
				return printDevice(cmd, api, keys[0])
			})
		},
	}
}

func newUnlinkCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unlink DEVICE",
		Short: "Remove a manual link",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAPI(cmd, g, openSync, func(api engine.API) error {
				keys, err := resolveDevices(cmd.Context(), api, args)
				if err != nil {
					return err
				}
				if err := api.Unlink(cmd.Context(), engine.DeviceRequest{Device: keys[0], Actor: actor()}); err != nil {
					return err
				}
				return printDevice(cmd, api, keys[0])
			})
		},
	}
}

// printDevice prints a device's decision after an action.
func printDevice(cmd *cobra.Command, api engine.API, key engine.DeviceKey) error {
	d, err := api.Device(cmd.Context(), key)
	if err != nil {
		return err
	}
	r := d.Record
	mdm := "unmerged"
	if r.Merged() {
		mdm = fmt.Sprintf("MDM %s (%s, %s)", r.MDMID, r.Link, r.Compliance)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s; %s, %s: %s\n", key, mdm, r.AccessState.Lower(), r.Decision.Access, engine.Printable(r.Decision.Reason))
	return nil
}

// resolveDevices turns DEVICE arguments (mailbox/deviceId, or a device ID
// that only one mailbox has) into device keys.
func resolveDevices(ctx context.Context, api engine.API, args []string) ([]engine.DeviceKey, error) {
	recs, err := api.Devices(ctx, engine.DeviceQuery{Filter: engine.FilterAll})
	if err != nil {
		return nil, err
	}
	byKey := make(map[engine.DeviceKey]bool, len(recs))
	byID := map[string][]engine.DeviceKey{}
	for i := range recs {
		k := recs[i].Key()
		byKey[k] = true
		id := strings.ToLower(recs[i].DeviceID)
		byID[id] = append(byID[id], k)
	}
	out := make([]engine.DeviceKey, 0, len(args))
	for _, a := range args {
		if strings.Contains(a, "/") {
			mailbox, id, _ := strings.Cut(a, "/")
			k := engine.KeyOf(mailbox, id)
			if !byKey[k] {
				return nil, usageError{fmt.Errorf("device %q: no such partnership in the store (run a sync first?)", a)}
			}
			out = append(out, k)
			continue
		}
		switch ks := byID[strings.ToLower(a)]; len(ks) {
		case 0:
			return nil, usageError{fmt.Errorf("device %q: no partnership has this device ID", a)}
		case 1:
			out = append(out, ks[0])
		default:
			return nil, usageError{fmt.Errorf("device %q: %d mailboxes have it; name one as mailbox/%s", a, len(ks), a)}
		}
	}
	return out, nil
}
