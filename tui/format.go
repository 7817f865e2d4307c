package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"easgate/engine"
)

// Time layouts the views use. Times show in the location of Options.Now's
// result: local time in the product, a fixed zone in tests.
const (
	layoutDate     = "2006-01-02"
	layoutDateTime = "2006-01-02 15:04"
)

// count formats n with thousands separators: 150000 → "150,000".
func count(n int) string {
	s := strconv.Itoa(n)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	b.WriteString(sign)
	head := len(s) % 3
	if head == 0 {
		head = 3
	}
	b.WriteString(s[:head])
	for i := head; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// age says how long ago t was, compactly: "now", "5m", "3h", "2d", "6w",
// "2y". A zero t is "never".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d < 14*24*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d < 365*24*time.Hour:
		return fmt.Sprintf("%dw", int(d/(7*24*time.Hour)))
	}
	return fmt.Sprintf("%dy", int(d/(365*24*time.Hour)))
}

// ago is age with " ago" where that reads better: "5m ago", "never", "now".
func ago(now, t time.Time) string {
	a := age(now, t)
	if a == "never" || a == "now" {
		return a
	}
	return a + " ago"
}

// stamp formats t in loc with layout; a zero t is "—".
func stamp(t time.Time, loc *time.Location, layout string) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(loc).Format(layout)
}

// span formats a run's duration: "850ms", "12s", "3m05s", "1h02m".
func span(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// phaseLabel names a run phase in words.
func phaseLabel(phase string) string {
	switch phase {
	case engine.PhaseObserveExchange:
		return "reading Exchange"
	case engine.PhaseObserveIntune:
		return "reading Intune"
	case engine.PhasePlan:
		return "planning"
	case engine.PhaseApply:
		return "applying changes"
	case engine.PhaseNotify:
		return "notifying users"
	case engine.PhaseSave:
		return "saving"
	case "":
		return "starting"
	}
	return phase
}

// accessLabel names an Exchange access state, and the tone to show it in.
// States Exchange adds later pass through as their own text.
func accessLabel(s engine.AccessState) (string, tone) {
	switch s {
	case engine.StateAllowed:
		return "allowed", toneOK
	case engine.StateBlocked:
		return "blocked", toneBad
	case engine.StateQuarantined:
		return "quarantined", toneWarn
	case engine.StateDeviceDiscovery:
		return "discovery", toneWarn
	case engine.StateUnknown, "":
		return "unknown", toneMuted
	}
	return strings.ToLower(string(s)), toneNormal
}

// runStatusTone is the tone a run status shows in.
func runStatusTone(s engine.RunStatus) tone {
	switch s {
	case engine.StatusSucceeded:
		return toneOK
	case engine.StatusFailed:
		return toneBad
	case engine.StatusBraked:
		return toneWarn
	case engine.StatusRunning:
		return toneAccent
	case engine.StatusDryRun:
		return toneMuted
	}
	return toneNormal
}

// runSummary says in one line how a run ended, and at what level.
func runSummary(r *engine.Run, plan *engine.Plan) (string, level) {
	c := r.Counts
	switch r.Status {
	case engine.StatusSucceeded:
		return fmt.Sprintf("%s sync succeeded in %s: %s of %s changes applied, %s notifications sent",
			r.Kind, span(r.Duration()), count(c.ChangesApplied), count(c.ChangesPlanned),
			count(c.NotificationsSent)), levelInfo
	case engine.StatusFailed:
		msg := r.Error
		if msg == "" {
			msg = "no reason recorded"
		}
		return fmt.Sprintf("%s sync failed: %s", r.Kind, msg), levelError
	case engine.StatusBraked:
		if plan != nil && plan.Brake != nil && plan.Brake.Reason != "" {
			return fmt.Sprintf("%s sync held by the safety brake: %s", r.Kind, plan.Brake.Reason), levelWarn
		}
		return fmt.Sprintf("%s sync held by the safety brake: nothing that blocks was applied", r.Kind), levelWarn
	case engine.StatusDryRun:
		return fmt.Sprintf("dry run: %s changes and %s notifications planned, nothing applied",
			count(c.ChangesPlanned), count(max(c.NotificationsSent, notificationsOf(plan)))), levelInfo
	}
	return fmt.Sprintf("%s sync ended: %s", r.Kind, r.Status), levelInfo
}

// notificationsOf counts a plan's notifications; a nil plan has none.
func notificationsOf(p *engine.Plan) int {
	if p == nil {
		return 0
	}
	return len(p.Notifications)
}
