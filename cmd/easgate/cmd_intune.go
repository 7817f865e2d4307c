package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"easgate/config"
	"easgate/engine"
	"easgate/engine/intune"
)

func newIntuneCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "intune",
		Short: "Check the connection to Intune and read its raw inventory (needs the config, not the store)",
	}
	cmd.AddCommand(newIntuneTestCmd(g), newIntuneDevicesCmd(g))
	return cmd
}

// intuneConfig maps the config's intune section to the adapter's Config.
// A PKCS#12 certificate's password comes from EASGATE_GRAPH_CERTIFICATE_PASSWORD.
func intuneConfig(cfg *config.Config) (intune.Config, error) {
	in := cfg.Intune
	c := intune.Config{
		TenantID: in.TenantID, ClientID: in.ClientID, ClientSecret: in.ClientSecret.Reveal(),
		CertificateFile: cfg.Resolve(in.CertificateFile), GraphURL: in.GraphURL, AuthorityURL: in.AuthorityURL,
	}
	if in.CertificateFile != "" {
		c.CertificatePassword = in.CertificatePassword.Reveal()
	}
	if in.CAFile != "" {
		pem, err := cfg.ReadFile(in.CAFile)
		if err != nil {
			return c, usageError{fmt.Errorf("intune.ca_file: %w", err)}
		}
		c.CAPEM = pem
	}
	return c, nil
}

// openIntune loads the config and builds the Intune client alone: no
// store, no other adapter. Logs go to the config's log file.
func openIntune(cmd *cobra.Command, g *globals) (*config.Config, *intune.Client, func(), error) {
	cfg, err := loadConfig(g, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, nil, err
	}
	log, closeLog, err := openLogger(logOptions{file: cfg.Resolve(cfg.Log.File), level: cfg.Log.Level})
	if err != nil {
		return nil, nil, nil, err
	}
	ic, err := intuneConfig(cfg)
	if err != nil {
		_ = closeLog()
		return nil, nil, nil, err
	}
	c, err := intune.New(ic, log.With("subsystem", "intune"))
	if err != nil {
		_ = closeLog()
		if errors.Is(err, intune.ErrConfig) {
			return nil, nil, nil, usageError{err}
		}
		return nil, nil, nil, err
	}
	return cfg, c, func() { c.Close(); _ = closeLog() }, nil
}

func newIntuneTestCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Get a token, check the app's Graph permissions, read one managed device and one member of each policy group",
		Long: `Checks the intune section of the config end to end: a token from the authority, the
application permissions it carries (DeviceManagementManagedDevices.Read.All, and
GroupMember.Read.All when the policy names groups), a one-item read of managed devices and
of each include and exclude group. Exit 0 when everything works, 1 when something does not,
2 for a configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outText, outJSON); err != nil {
				return err
			}
			cfg, c, done, err := openIntune(cmd, g)
			if err != nil {
				return err
			}
			defer done()
			groups := append(append([]string(nil), cfg.Policy.IncludeGroups...), cfg.Policy.ExcludeGroups...)
			rep, testErr := c.Test(cmd.Context(), groups...)
			out := cmd.OutOrStdout()
			if output == outJSON {
				if err := writeJSON(out, rep); err != nil {
					return err
				}
			} else {
				printTestReport(out, rep, cfg.Policy.IncludeGroups)
			}
			if testErr != nil {
				return exitError{code: exitFailed, msg: "intune test failed"}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: text or json")
	return cmd
}

// printTestReport writes the connectivity report for a person.
func printTestReport(w io.Writer, rep *intune.TestReport, include []string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("graph:       %s", rep.GraphURL)
	p("authority:   %s", rep.AuthorityURL)
	p("tenant:      %s", engine.Printable(rep.TenantID))
	p("application: %s", engine.Printable(rep.ClientID))
	if c := rep.Certificate; c != nil {
		p("credential:  certificate %s, thumbprint %s, valid until %s", engine.Printable(c.Subject), c.Thumbprint, c.NotAfter.Format(time.RFC3339))
	} else {
		p("credential:  %s", rep.Credential)
	}
	if !rep.TokenOK {
		p("token:       FAILED")
	} else {
		p("token:       ok in %s, expires %s", rep.TokenTime.Round(time.Millisecond), rep.TokenExpires.Format(time.RFC3339))
		if rep.Permissions == nil {
			p("permissions: the token's roles cannot be read; the reads below show what works")
		}
		for _, pc := range rep.Permissions {
			state := "granted"
			switch {
			case pc.Granted && pc.GrantedAs != "":
				state = "granted as " + pc.GrantedAs
			case !pc.Granted && pc.Needed:
				state = "MISSING"
			case !pc.Granted:
				state = "not granted (not needed: the policy names no groups)"
			}
			p("permission:  %-40s %s (to %s)", pc.Permission, state, pc.Why)
		}
		switch {
		case rep.ReadOK:
			p("read:        ok in %s, %d managed device(s) on a one-item page", rep.ReadTime.Round(time.Millisecond), rep.DevicesSeen)
		default:
			p("read:        FAILED")
		}
	}
	for _, gc := range rep.Groups {
		kind := "exclude"
		for _, id := range include {
			if id == gc.ID {
				kind = "include"
			}
		}
		if gc.OK {
			p("group:       %s (%s) ok", engine.Printable(gc.ID), kind)
		} else {
			p("group:       %s (%s) FAILED", engine.Printable(gc.ID), kind)
		}
	}
	if rep.Error == "" {
		p("result:      OK")
		return
	}
	p("result:      FAILED")
	for _, line := range strings.Split(rep.Error, "\n") {
		p("  - %s", engine.Printable(line))
	}
}

// intuneDevice is a managed device as `intune devices --output json`
// prints it (CONTRACTS.md, raw inventories): Graph's enum spellings, empty
// EAS IDs and zero dates as null.
type intuneDevice struct {
	ID                  string  `json:"id"`
	UserPrincipalName   string  `json:"user_principal_name"`
	Email               string  `json:"email"`
	DeviceName          string  `json:"device_name"`
	OperatingSystem     string  `json:"operating_system"`
	OSVersion           string  `json:"os_version"`
	Model               string  `json:"model"`
	Manufacturer        string  `json:"manufacturer"`
	EASDeviceID         *string `json:"eas_device_id"`
	EASActivated        bool    `json:"eas_activated"`
	Compliance          string  `json:"compliance"`
	ManagementAgent     string  `json:"management_agent"`
	ExchangeAccessState string  `json:"exchange_access_state"`
	Enrolled            *string `json:"enrolled"`
	LastSync            *string `json:"last_sync"`
}

func intuneDeviceOf(d *engine.MDMDevice) intuneDevice {
	return intuneDevice{
		ID: d.ID, UserPrincipalName: d.UserPrincipalName, Email: d.Email, DeviceName: d.DeviceName,
		OperatingSystem: d.OperatingSystem, OSVersion: d.OSVersion, Model: d.Model, Manufacturer: d.Manufacturer,
		EASDeviceID: nullString(d.EASDeviceID), EASActivated: d.EASActivated, Compliance: string(d.Compliance),
		ManagementAgent: d.ManagementAgent, ExchangeAccessState: d.ExchangeAccessState,
		Enrolled: nullTime(d.Enrolled), LastSync: nullTime(d.LastSync),
	}
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func newIntuneDevicesCmd(g *globals) *cobra.Command {
	var (
		output string
		since  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Print Intune's managed devices as the adapter reads them",
		Long: `Reads every managed device from Microsoft Graph, as a full sync does, and prints it as
parsed (JSON: the raw inventory shape of CONTRACTS.md). --since reads only devices that
synced or enrolled within that long, as a quick sync does. An inventory that could not be
read whole is printed and the command exits 1, naming what is missing on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outCSV, outText); err != nil {
				return err
			}
			if since < 0 {
				return usageError{fmt.Errorf("--since %v: want a positive duration", since)}
			}
			_, c, done, err := openIntune(cmd, g)
			if err != nil {
				return err
			}
			defer done()
			var q engine.MDMQuery
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			inv, err := c.ManagedDevices(cmd.Context(), q)
			if err != nil {
				return err
			}
			if err := printIntuneDevices(cmd.OutOrStdout(), output, inv.Devices); err != nil {
				return err
			}
			if !inv.Complete() {
				for _, p := range inv.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), "easgate: problem:", engine.Printable(p))
				}
				return exitError{code: exitFailed, msg: fmt.Sprintf("the Intune inventory is incomplete (%d problem(s)); a sync would block nothing on it", len(inv.Problems))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outJSON, "output format: json, csv or text")
	cmd.Flags().DurationVar(&since, "since", 0, "only devices that synced or enrolled within this long (a quick sync's read)")
	return cmd
}

func printIntuneDevices(w io.Writer, output string, devices []engine.MDMDevice) error {
	if output == outJSON || output == outCSV {
		out := make([]intuneDevice, len(devices))
		for i := range devices {
			out[i] = intuneDeviceOf(&devices[i])
		}
		if output == outCSV {
			return writeCSVOf(w, out)
		}
		return writeJSON(w, out)
	}
	t := newTable(w, "ID", "USER", "DEVICE", "OS", "EAS ID", "COMPLIANCE", "AGENT", "LAST SYNC")
	for i := range devices {
		d := &devices[i]
		last := "-"
		if !d.LastSync.IsZero() {
			last = d.LastSync.UTC().Format(time.RFC3339)
		}
		t.row(d.ID, d.UserPrincipalName, d.DeviceName, strings.TrimSpace(d.OperatingSystem+" "+d.OSVersion),
			d.EASDeviceID, string(d.Compliance), d.ManagementAgent, last)
	}
	return t.flush()
}
