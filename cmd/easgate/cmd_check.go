package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"easgate/engine"
)

// checkFlags are the thresholds of `easgate check`; a negative count or a
// zero age is "not set".
type checkFlags struct {
	maxAge       time.Duration
	warnAge      time.Duration
	warnUnmerged int
	critUnmerged int
	timeout      time.Duration
}

// checkHistory is how many runs check reads to find the last successful one.
const checkHistory = 100

func newCheckCmd(g *globals) *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Monitoring plugin: one status line with perfdata, Nagios exit codes",
		Long: `Check easgate's health for Nagios, Icinga, Zabbix or PRTG (SSH script sensor): one line
"EASGATE OK|WARNING|CRITICAL|UNKNOWN - …", performance data after "|", and the exit
code 0, 1, 2 or 3.

CRITICAL: no successful sync for longer than --max-age (default 3 × schedule.quick),
the last sync failed, the safety brake holds a plan, or Exchange or Graph is
unreachable. WARNING: the last sync had problems (an incomplete inventory, failed
notifications or changes), Exchange failover is active, or a --warn-* threshold is
crossed. UNKNOWN: the config, the store or the service cannot be read.

It asks the running service through its control socket (live health included), or
reads the store read-only when no service runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			code, line := runCheck(cmd.Context(), g, f, cmd.ErrOrStderr())
			fmt.Fprintln(cmd.OutOrStdout(), line)
			if code != nagiosOK {
				return exitError{code: code}
			}
			return nil
		},
	}
	// A monitoring system reads any misuse as UNKNOWN, not as exit 2.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintln(c.OutOrStdout(), "EASGATE UNKNOWN - "+oneLine(err.Error()))
		return exitError{code: nagiosUnknwn}
	})
	fl := cmd.Flags()
	fl.DurationVar(&f.maxAge, "max-age", 0, "CRITICAL when the last successful sync ended longer ago (default 3 × schedule.quick)")
	fl.DurationVar(&f.warnAge, "warn-age", 0, "WARNING when the last successful sync ended longer ago (default: off)")
	fl.IntVar(&f.warnUnmerged, "warn-unmerged", -1, "WARNING at this many unmerged devices or more (default: off)")
	fl.IntVar(&f.critUnmerged, "crit-unmerged", -1, "CRITICAL at this many unmerged devices or more (default: off)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up (UNKNOWN) after this long")
	return cmd
}

// runCheck gathers easgate's state and judges it; every failure to gather
// is UNKNOWN.
func runCheck(ctx context.Context, g *globals, f checkFlags, stderr io.Writer) (int, string) {
	unknown := func(err error) (int, string) {
		return nagiosUnknwn, "EASGATE UNKNOWN - " + oneLine(err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cfg, lite, cfgErr := loadAttachable(g, stderr)
	if cfg == nil {
		return unknown(cfgErr)
	}
	if f.maxAge <= 0 {
		f.maxAge = 3 * cfg.Schedule.Quick
		if f.maxAge <= 0 {
			f.maxAge = 3 * cfg.Schedule.Full
		}
	}
	a, dialErr := attach(ctx, cfg, openRead)
	if a == nil && lite {
		return unknown(cfgErr)
	}
	if a == nil {
		// No service (or one that will not have us): read the store, quietly.
		var err error
		a, err = openWith(ctx, cfg, logOptions{w: io.Discard, level: "error"}, openRead)
		if err != nil {
			if dialErr != nil {
				err = fmt.Errorf("%w; control socket: %v", err, dialErr)
			}
			return unknown(err)
		}
	}
	defer a.close()
	st, err := a.api.Status(ctx)
	if err != nil {
		return unknown(fmt.Errorf("status: %w", err))
	}
	runs, err := a.api.Runs(ctx, checkHistory)
	if err != nil {
		return unknown(fmt.Errorf("run history: %w", err))
	}
	return judge(checkInput{status: st, runs: runs, now: time.Now()}, f)
}

// checkInput is what check judges.
type checkInput struct {
	status engine.Status
	runs   []engine.Run // newest first
	now    time.Time
}

// benignProblem is a run problem that says what the run did instead, not
// that something is wrong.
const benignProblem = "no complete full sync yet"

// judge turns easgate's state into a Nagios status and line.
func judge(in checkInput, f checkFlags) (int, string) {
	var crit, warn []string
	st := in.status

	var last, lastOK *engine.Run
	for i := range in.runs {
		r := &in.runs[i]
		if r.Status == engine.StatusDryRun || r.Status == engine.StatusRunning {
			continue
		}
		if last == nil {
			last = r
		}
		if r.Status == engine.StatusSucceeded {
			lastOK = r
			break
		}
	}

	age := time.Duration(-1)
	switch {
	case lastOK == nil:
		crit = append(crit, "no successful sync recorded")
	default:
		age = max(in.now.Sub(lastOK.Finished), 0)
		switch {
		case f.maxAge > 0 && age > f.maxAge:
			crit = append(crit, fmt.Sprintf("last successful sync %s ago (limit %s)", roundAge(age), f.maxAge))
		case f.warnAge > 0 && age > f.warnAge:
			warn = append(warn, fmt.Sprintf("last successful sync %s ago (warning at %s)", roundAge(age), f.warnAge))
		}
	}
	if last != nil && last.Status == engine.StatusFailed {
		crit = append(crit, "last sync failed: "+last.Error)
	}
	if st.HeldPlan != nil {
		reason := "waiting for approval"
		if st.HeldPlan.Brake != nil {
			reason = st.HeldPlan.Brake.Reason
		}
		crit = append(crit, "safety brake holds a plan: "+reason)
	}

	// Health: only what was called says anything.
	var exDown, exUp []string
	for _, h := range st.Exchange {
		switch {
		case h.LastCall.IsZero() && !h.CoolDownUntil.After(in.now):
		case !h.OK || h.CoolDownUntil.After(in.now):
			exDown = append(exDown, h.Name+downReason(h))
		default:
			exUp = append(exUp, h.Name)
		}
	}
	switch {
	case len(exDown) > 0 && len(exUp) == 0:
		crit = append(crit, "Exchange unreachable: "+strings.Join(exDown, ", "))
	case len(exDown) > 0:
		warn = append(warn, fmt.Sprintf("Exchange failover active: %s down, using %s", strings.Join(exDown, ", "), strings.Join(exUp, ", ")))
	}
	if h := st.Intune; !h.LastCall.IsZero() && !h.OK {
		crit = append(crit, "Graph unreachable"+downReason(h))
	}

	k := st.Counts
	switch {
	case f.critUnmerged >= 0 && k.Unmerged >= f.critUnmerged:
		crit = append(crit, fmt.Sprintf("%d unmerged devices (critical at %d)", k.Unmerged, f.critUnmerged))
	case f.warnUnmerged >= 0 && k.Unmerged >= f.warnUnmerged:
		warn = append(warn, fmt.Sprintf("%d unmerged devices (warning at %d)", k.Unmerged, f.warnUnmerged))
	}
	if last != nil && last.Status != engine.StatusFailed {
		var problems []string
		for _, p := range last.Problems {
			if !strings.HasPrefix(p, benignProblem) {
				problems = append(problems, p)
			}
		}
		if len(problems) > 0 {
			warn = append(warn, fmt.Sprintf("last sync had %d problem(s): %s", len(problems), problems[0]))
		}
	}
	for _, w := range st.Warnings {
		// The brake and the last run's problems are judged above.
		if strings.HasPrefix(w, "safety brake holds") || strings.HasPrefix(w, "last run had") {
			continue
		}
		warn = append(warn, w)
	}

	code, word, reasons := nagiosOK, "OK", []string(nil)
	switch {
	case len(crit) > 0:
		code, word, reasons = nagiosCrit, "CRITICAL", append(crit, warn...)
	case len(warn) > 0:
		code, word, reasons = nagiosWarn, "WARNING", warn
	default:
		reasons = []string{fmt.Sprintf("last sync succeeded %s ago", roundAge(age))}
	}
	summary := fmt.Sprintf("%d EAS devices, %d unmerged, %d blocked", k.EASDevices, k.Unmerged, k.Blocked)
	line := "EASGATE " + word + " - " + oneLine(strings.Join(reasons, "; ")) + "; " + summary
	return code, line + " | " + perfdata(in, f, age, last)
}

// perfdata is the Nagios performance data: label=value[UOM];warn;crit;min.
func perfdata(in checkInput, f checkFlags, age time.Duration, last *engine.Run) string {
	k := in.status.Counts
	thr := func(n int) string {
		if n < 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	secs := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return strconv.FormatInt(int64(d.Seconds()), 10)
	}
	ageVal := "U"
	if age >= 0 {
		ageVal = strconv.FormatInt(int64(age.Seconds()), 10) + "s"
	}
	failed := 0
	if last != nil {
		failed = last.Counts.ChangesFailed
	}
	return strings.Join([]string{
		fmt.Sprintf("eas_devices=%d;;;0", k.EASDevices),
		fmt.Sprintf("unmerged=%d;%s;%s;0", k.Unmerged, thr(f.warnUnmerged), thr(f.critUnmerged)),
		fmt.Sprintf("blocked=%d;;;0", k.Blocked),
		fmt.Sprintf("quarantined=%d;;;0", k.Quarantined),
		fmt.Sprintf("last_run_age=%s;%s;%s;0", ageVal, secs(f.warnAge), secs(f.maxAge)),
		fmt.Sprintf("changes_failed=%d;;;0", failed),
		fmt.Sprintf("notifications_pending=%d;;;0", in.status.Pending),
	}, " ")
}

func downReason(h engine.Health) string {
	if h.Error == "" {
		return ""
	}
	return " (" + h.Error + ")"
}

func roundAge(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d < time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

// oneLine makes text safe for a plugin's status line: printable, one line,
// no "|" (which starts the perfdata), not overly long.
func oneLine(s string) string {
	s = engine.Printable(strings.Join(strings.Fields(s), " "))
	s = strings.ReplaceAll(s, "|", "/")
	const maxLen = 400
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return s
}
