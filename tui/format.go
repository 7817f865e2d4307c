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
	return clean(phase)
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

// Who set a device's access state, as the Blocked view names them.
const (
	whoEasgate  = "easgate"
	whoOverride = "admin override"
	whoEntry    = "admin entry"
	whoRule     = "Exchange rule"
	whoDefault  = "org default"
	whoPolicy   = "mailbox policy"
	whoExchange = "Exchange"
)

// byWhom says who set the device's access state: easgate (its own list
// entry, or the org default it manages for the policy), an admin (an
// override in easgate, or a list entry made by hand), an Exchange device
// access rule, the org's default access level, the mailbox policy, or
// Exchange on its own (its automatic blocks).
func byWhom(r *engine.DeviceRecord) string {
	switch r.Decision.Code {
	case engine.ReasonAdminOverride:
		return whoOverride
	case engine.ReasonAdminEntry:
		return whoEntry
	}
	switch strings.ToLower(r.AccessReason) {
	case "individual":
		if wantsState(r) {
			return whoEasgate
		}
		return whoEntry
	case "devicerule":
		return whoRule
	case "global":
		return whoDefault
	case "policy":
		return whoPolicy
	case "", "unknown":
		if wantsState(r) {
			return whoEasgate
		}
	}
	return whoExchange
}

// wantsState reports whether easgate's decision is the state Exchange shows.
func wantsState(r *engine.DeviceRecord) bool {
	switch r.AccessState {
	case engine.StateAllowed:
		return r.Decision.Access == engine.AccessAllow
	case engine.StateBlocked:
		return r.Decision.Access == engine.AccessBlock
	case engine.StateQuarantined:
		return r.Decision.Access == engine.AccessQuarantine
	}
	return false
}

// blockReason is why a device has its access state, in words: easgate's
// reason when its decision is what Exchange shows (or an admin's override
// made it), else Exchange's own reason.
func blockReason(r *engine.DeviceRecord) string {
	if r.Decision.Reason != "" && (wantsState(r) || r.Decision.Code == engine.ReasonAdminOverride) {
		return r.Decision.Reason
	}
	switch strings.ToLower(r.AccessReason) {
	case "global":
		return "Exchange's default access level for devices without a rule or list entry"
	case "devicerule":
		return "an Exchange device access rule matches the device"
	case "policy":
		return "the device does not meet the mailbox's ActiveSync policy"
	case "individual":
		return "an admin put the device on the mailbox's list by hand"
	case "upgrade":
		return "Exchange set it when the organisation was upgraded"
	case "", "unknown":
		if r.Decision.Reason != "" {
			return r.Decision.Reason
		}
		return "set by Exchange"
	}
	return "Exchange blocked it on its own (" + r.AccessReason + ")"
}

// blockedSince is when the device's access last changed, as far as easgate
// knows.
func blockedSince(r *engine.DeviceRecord) time.Time {
	if !r.Since.IsZero() {
		return r.Since
	}
	return r.WhenChanged
}

// deviceName is a device's type and model in one cell.
func deviceName(r *engine.DeviceRecord) string {
	switch {
	case r.DeviceType == "":
		return r.DeviceModel
	case r.DeviceModel == "" || r.DeviceModel == r.DeviceType:
		return r.DeviceType
	}
	return r.DeviceType + " " + r.DeviceModel
}

// notifiedCell says how often and how long ago the user was mailed.
func notifiedCell(n engine.NotifyState, now time.Time) cell {
	if n.Count == 0 {
		if n.LastError != "" {
			return cell{text: "failed", tone: toneBad}
		}
		return cell{text: "never", tone: toneMuted}
	}
	return cell{text: fmt.Sprintf("%d× %s", n.Count, age(now, n.LastSent))}
}

// complianceLabel names an Intune compliance state, and its tone.
func complianceLabel(c engine.Compliance) (string, tone) {
	switch c {
	case engine.ComplianceCompliant:
		return "compliant", toneOK
	case engine.ComplianceInGracePeriod:
		return "in grace", toneWarn
	case engine.ComplianceNoncompliant:
		return "noncompliant", toneBad
	case "":
		return "unknown", toneMuted
	}
	return string(c), toneNormal
}

// wantLabel is what easgate wants for the device, and its tone.
func wantLabel(r *engine.DeviceRecord) (string, tone) {
	if r.Decision.Exempt {
		return "exempt", toneMuted
	}
	switch r.Decision.Access {
	case engine.AccessAllow:
		return "allow", toneOK
	case engine.AccessBlock:
		return "block", toneBad
	case engine.AccessQuarantine:
		return "quarantine", toneWarn
	case engine.AccessNone, "":
		return "none", toneMuted
	}
	return string(r.Decision.Access), toneNormal
}

// orDash is s, or "—" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// bar draws a progress bar of width cells: filled for done of total.
func bar(done, total, width int) string {
	if total <= 0 || width <= 0 {
		return ""
	}
	n := min(max(done*width/total, 0), width)
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}

// parseUntil reads an override's expiry as an admin types it: empty (no
// expiry), a duration from now ("90m", "36h", "7d", "2w") or a local date
// or date and time ("2026-04-01", "2026-04-01 18:00"). It must be in the
// future.
func parseUntil(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	var until time.Time
	if n, err := strconv.Atoi(s[:len(s)-1]); err == nil && (strings.HasSuffix(s, "d") || strings.HasSuffix(s, "w")) {
		if n <= 0 {
			return time.Time{}, fmt.Errorf("expiry %q: want a number of days (7d) or weeks (2w)", s)
		}
		if strings.HasSuffix(s, "w") {
			n *= 7
		}
		until = now.AddDate(0, 0, n)
	} else if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("expiry %q: want a time in the future", s)
		}
		until = now.Add(d)
	} else {
		for _, layout := range []string{layoutDateTime, layoutDate} {
			if until, err = time.ParseInLocation(layout, s, now.Location()); err == nil {
				break
			}
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("expiry %q: want 90m, 36h, 7d, 2w, 2026-04-01 or 2026-04-01 18:00", s)
		}
	}
	if !until.After(now) {
		return time.Time{}, fmt.Errorf("expiry %q: that is not in the future", s)
	}
	return until, nil
}
