package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"easgate/config"
	"easgate/engine"
	"easgate/engine/exchange"
)

func newExchangeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "Check and read Exchange directly: test, devices, scripts, rbac-script",
		Long: `Talk to Exchange through the adapter alone, without the store or the engine:

  test         connect to every configured server: TCP and TLS, WinRM authentication,
               the Exchange session and the permissions the scripts need
  devices      read every device partnership (the raw inventory)
  scripts      print every PowerShell script easgate can send, exactly as sent
  rbac-script  print PowerShell that creates a least-privilege role for the service account`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newExchangeTestCmd(g), newExchangeDevicesCmd(g), newExchangeScriptsCmd(), newExchangeRBACCmd(g))
	return cmd
}

// exchangeFromConfig builds the Exchange adapter from the exchange:
// section; obs, if not nil, is told about every remote call. A problem
// with the section is a configuration error (exit 2).
func exchangeFromConfig(cfg *config.Config, log *slog.Logger, obs engine.CallObserver) (*exchange.Client, error) {
	x := cfg.Exchange
	var caPEM []byte
	if x.CAFile != "" {
		b, err := cfg.ReadFile(x.CAFile)
		if err != nil {
			return nil, usageError{err}
		}
		caPEM = b
	}
	ex, err := exchange.New(exchange.Config{
		Servers: x.Servers, Port: x.Port, HTTPS: x.HTTPS, Auth: x.Auth, Username: x.Username,
		Password: x.Password.Reveal(), CAPEM: caPEM, InsecureSkipVerify: x.InsecureSkipVerify,
		Session: x.Session, Parallel: x.Parallel, AllowInsecureTransport: x.AllowInsecureTransport, Observer: obs,
		CoolDown: x.CoolDown, CommandTimeout: x.CommandTimeout, Krb5Conf: cfg.Resolve(x.Krb5Conf),
		Keytab: cfg.Resolve(x.Keytab), CCache: cfg.Resolve(x.CCache), Realm: x.Realm, SPN: x.SPN,
	}, log.With("subsystem", "exchange"))
	if errors.Is(err, exchange.ErrConfig) {
		return nil, usageError{fmt.Errorf("exchange: %w", err)}
	}
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	return ex, nil
}

// withExchange loads the config, opens the log file and hands fn an
// Exchange client, closed afterwards (which deletes its shells).
func withExchange(cmd *cobra.Command, g *globals, fn func(ctx context.Context, ex *exchange.Client) error) error {
	cfg, err := loadConfig(g, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	log, closeLog, err := openLogger(fileLog(cfg))
	if err != nil {
		return err
	}
	defer func() { _ = closeLog() }()
	ex, err := exchangeFromConfig(cfg, log, nil)
	if err != nil {
		return err
	}
	defer func() { _ = ex.Close() }()
	return fn(cmd.Context(), ex)
}

func newExchangeTestCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Check every configured Exchange server, step by step",
		Long: `Check every configured Exchange server in failover order: the TCP connection and TLS,
WinRM authentication (cmd.exe's hostname), the Exchange PowerShell session, and the
permissions (every cmdlet the scripts call, by Get-Command). Then show which server
calls go to, the health of each, and the servers with client access services Exchange
knows of. Exit code 1 when any server fails a step.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outText); err != nil {
				return err
			}
			return withExchange(cmd, g, func(ctx context.Context, ex *exchange.Client) error {
				rep, terr := ex.Test(ctx)
				w := cmd.OutOrStdout()
				var err error
				if output == outJSON {
					err = writeJSON(w, rep)
				} else {
					err = printExchangeTest(w, rep, time.Now())
				}
				if err != nil {
					return err
				}
				if terr != nil {
					return exitError{code: exitFailed, msg: "exchange test failed: " + terr.Error()}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: json or text")
	return cmd
}

func printExchangeTest(w io.Writer, rep *exchange.TestReport, now time.Time) error {
	t := newTable(w, "SERVER", "STEP", "RESULT", "DETAIL")
	for _, s := range rep.Servers {
		name := s.Server
		for _, st := range s.Steps {
			result, detail := "ok", st.Detail
			if !st.OK {
				result, detail = "FAILED", st.Error
			}
			t.row(name, st.Name, result, detail)
			name = ""
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	inUse := engine.Printable(rep.InUse)
	if inUse == "" {
		inUse = "none: no server answered"
	}
	fmt.Fprintf(w, "\nCalls go to: %s\n", inUse)
	h := newTable(w, "SERVER", "IN USE", "STATE", "LAST CALL", "ERROR")
	for _, s := range rep.Health {
		inUse, state, last := "", "ok", "-"
		if s.InUse {
			inUse = "yes"
		}
		switch {
		case now.Before(s.CoolDownUntil):
			state = "skipped until " + s.CoolDownUntil.Local().Format("15:04:05")
		case !s.OK:
			state = "failing"
		}
		if !s.LastCall.IsZero() {
			last = s.LastCall.Local().Format("15:04:05")
		}
		h.row(s.Name, inUse, state, last, s.Error)
	}
	if err := h.flush(); err != nil {
		return err
	}
	if len(rep.ClientAccess) > 0 {
		fmt.Fprintln(w, "\nServers with client access services (Get-ExchangeServer):")
		c := newTable(w, "NAME", "FQDN", "SITE", "ROLES", "VERSION")
		for _, s := range rep.ClientAccess {
			c.row(s.Name, s.Fqdn, s.Site, s.Roles, s.Version)
		}
		return c.flush()
	}
	return nil
}

func newExchangeDevicesCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Read every device partnership from Exchange (the raw inventory)",
		Long: `Read every device partnership from Exchange, as Get-MobileDevice and the mailboxes report
them, before any merge or decision. Problems reading the inventory are printed on stderr
and make the exit code 1 (an incomplete inventory never blocks anything).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outCSV, outText); err != nil {
				return err
			}
			return withExchange(cmd, g, func(ctx context.Context, ex *exchange.Client) error {
				inv, err := ex.Inventory(ctx, engine.InventoryQuery{})
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				devices := exchange.RawDevices(inv)
				switch output {
				case outJSON:
					err = writeJSON(w, devices)
				case outCSV:
					err = writeCSVOf(w, devices)
				default:
					t := newTable(w, "MAILBOX", "DEVICE ID", "TYPE", "MODEL", "CLIENT", "STATE", "REASON", "LAST SYNC")
					for _, d := range devices {
						last := "-"
						if d.LastSync != nil {
							last = d.LastSync.Format(time.RFC3339)
						}
						t.row(d.Mailbox, d.DeviceID, d.DeviceType, d.DeviceModel, d.ClientType, d.AccessState, d.AccessReason, last)
					}
					err = t.flush()
					if err == nil && isTerminal(w) {
						fmt.Fprintf(w, "%d partnership(s) in %d mailbox(es), from %s\n", len(devices), len(inv.Mailboxes), engine.Printable(inv.Server))
					}
				}
				if err != nil {
					return err
				}
				for _, p := range inv.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), "easgate: problem:", engine.Printable(p))
				}
				if !inv.Complete() {
					return exitError{code: exitFailed, msg: fmt.Sprintf("the inventory is incomplete: %d problem(s)", len(inv.Problems))}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: json, csv or text")
	return cmd
}

func newExchangeScriptsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "scripts",
		Short: "Print every PowerShell script easgate can send, exactly as sent",
		Long: `Print every PowerShell script the Exchange adapter can send, exactly as it is sent (as
powershell.exe -EncodedCommand). The scripts are fixed texts: device IDs, mailboxes and the
service credential travel separately, as JSON on the command's stdin. No config is needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, outJSON, outText); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output == outJSON {
				return writeJSON(w, exchange.Scripts())
			}
			for i, s := range exchange.Scripts() {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprint(w, strings.TrimRight(s.Text, "\n")+"\n")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outText, "output format: json or text")
	return cmd
}

func newExchangeRBACCmd(g *globals) *cobra.Command {
	var member string
	cmd := &cobra.Command{
		Use:   "rbac-script",
		Short: "Print PowerShell that creates a least-privilege Exchange role for the service account",
		Long: `Print PowerShell to run once in the Exchange Management Shell (as a member of Organization
Management): it creates management roles holding exactly the Exchange cmdlets easgate's
scripts call (New-ManagementRole -Parent, then Remove-ManagementRoleEntry of the rest), and a
role group "easgate" with the service account as its member. The member is --member, or
exchange.username from the config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if member == "" {
				cfg, err := loadConfig(g, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				member = cfg.Exchange.Username
			}
			if strings.TrimSpace(member) == "" {
				return usageError{errors.New("no service account: pass --member DOMAIN\\user or set exchange.username")}
			}
			_, err := io.WriteString(cmd.OutOrStdout(), exchange.RBACScript(member))
			return err
		},
	}
	cmd.Flags().StringVar(&member, "member", "", `the service account (DOMAIN\user); default exchange.username from the config`)
	return cmd
}
