package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// headerHeight is how many lines the header takes.
const headerHeight = 2

// header is the top of the screen: the title and READ-ONLY badge with the
// connection state of Exchange and Intune, then the last run on the left
// and, on the right, the run under way with its progress, a held plan or
// the engine's first warning. The Overview has the details.
type header struct {
	styles *styles
	shared *shared
	title  string
	width  int
}

// View renders the header; spin is the spinner's current frame.
func (h *header) View(spin string, now time.Time) string {
	return h.titleLine(now) + "\n" + h.runLine(spin, now)
}

// titleLine is the title, the badge and the connection states.
func (h *header) titleLine(now time.Time) string {
	left := h.styles.title.Render(clean(h.title))
	if h.shared.isReadOnly() {
		left += "  " + h.styles.badge.Render(" READ-ONLY ")
	}
	room := h.width - ansi.StringWidth(left) - 2
	var right string
	for _, short := range []bool{false, true} {
		right = h.health(now, short)
		if ansi.StringWidth(right) <= room {
			break
		}
	}
	// The title and badge stay whole; the connection states give way.
	return spread(left, ansi.Truncate(right, max(room, 0), "…"), h.width)
}

// health renders the connection state of each Exchange server and of
// Intune. short names servers by their first DNS label.
func (h *header) health(now time.Time, short bool) string {
	if !h.shared.loaded {
		return h.styles.muted.Render("connecting to the engine…")
	}
	st := &h.shared.status
	var b strings.Builder
	b.WriteString(h.styles.label.Render("Exchange"))
	if len(st.Exchange) == 0 {
		b.WriteString(" " + h.mark(engine.Health{}, now))
	}
	for _, s := range st.Exchange {
		name := clean(s.Name)
		if short {
			name, _, _ = strings.Cut(name, ".")
		}
		b.WriteString(" " + name + " " + h.mark(s, now))
	}
	b.WriteString("  " + h.styles.label.Render("Intune") + " " + h.mark(st.Intune, now))
	return b.String()
}

// mark is one connection's state as a symbol that reads without colour:
// ✓ reachable, ✗ failing or cooling down, ? not contacted yet.
func (h *header) mark(s engine.Health, now time.Time) string {
	switch healthState(s, now) {
	case healthOK:
		return h.styles.ok.Render("✓")
	case healthUnknown:
		return h.styles.muted.Render("?")
	case healthCooling, healthFailed:
		return h.styles.bad.Render("✗")
	}
	return h.styles.bad.Render("✗")
}

// healthKind classifies a connection's state.
type healthKind int

// Connection states.
const (
	healthUnknown healthKind = iota // not contacted yet
	healthOK
	healthFailed
	healthCooling // failed, and skipped until its cool-down ends
)

// healthState classifies a connection at now.
func healthState(s engine.Health, now time.Time) healthKind {
	switch {
	case !s.CoolDownUntil.IsZero() && now.Before(s.CoolDownUntil):
		return healthCooling
	case s.OK:
		return healthOK
	case s.Error != "":
		return healthFailed
	case s.LastCall.IsZero():
		return healthUnknown
	}
	return healthFailed
}

// runLine is the last run on the left and, on the right, the run under way,
// a held plan or the engine's first warning.
func (h *header) runLine(spin string, now time.Time) string {
	st := &h.shared.status
	left := h.styles.label.Render("Last run") + " "
	switch r := st.LastRun; {
	case !h.shared.loaded:
		left += "—"
	case r == nil:
		left += "none yet: press s to sync"
	default:
		left += shortRunText(h.styles, r, now)
	}
	var right string
	switch p := h.shared.progress; {
	case p != nil:
		kind := p.Run.Kind
		if kind == "" {
			kind = engine.RunFull
		}
		text := spin + " " + string(kind) + " sync: " + progressText(p)
		if p.Total > 0 {
			text += " " + bar(p.Done, p.Total, 10)
		}
		right = h.styles.accent.Render(text)
	case st.HeldPlan != nil:
		right = h.styles.warn.Render(fmt.Sprintf("⚠ plan held: %s new blocks (6: review)", count(st.HeldPlan.NewBlocks)))
	case len(st.Warnings) == 1:
		right = h.styles.warn.Render("⚠ " + clean(st.Warnings[0]))
	case len(st.Warnings) > 1:
		right = h.styles.warn.Render(fmt.Sprintf("⚠ %s (+%d more)", clean(st.Warnings[0]), len(st.Warnings)-1))
	}
	share := h.width * 2 / 5 // a warning leaves the last run room
	if h.shared.progress != nil {
		share = h.width * 3 / 5
	}
	right = ansi.Truncate(right, max(share, 20), "…")
	return spread(left, right, h.width)
}

// lastRunText is a finished run in a few words: "full succeeded
// 2026-03-02 06:00 (4h ago, took 12s)".
func lastRunText(st *styles, r *engine.Run, now time.Time) string {
	at := r.Finished
	if at.IsZero() {
		at = r.Started
	}
	return fmt.Sprintf("%s %s %s (%s, took %s)", r.Kind, st.tone(runStatusTone(r.Status)).Render(string(r.Status)),
		stamp(at, now.Location(), layoutDateTime), ago(now, at), span(r.Duration()))
}

// shortRunText is a finished run in fewer words: "full succeeded 4h ago
// (took 12s)".
func shortRunText(st *styles, r *engine.Run, now time.Time) string {
	at := r.Finished
	if at.IsZero() {
		at = r.Started
	}
	return fmt.Sprintf("%s %s %s (took %s)", r.Kind, st.tone(runStatusTone(r.Status)).Render(string(r.Status)),
		ago(now, at), span(r.Duration()))
}

// spread puts left and right on one line of width cells, cutting left
// first and then right when both do not fit.
func spread(left, right string, width int) string {
	lw, rw := ansi.StringWidth(left), ansi.StringWidth(right)
	if right == "" {
		return ansi.Truncate(left, width, "…")
	}
	if lw+2+rw > width {
		room := width - rw - 2
		if room < 12 {
			// Too narrow for both: the right side (live state) wins.
			return ansi.Truncate(right, width, "…")
		}
		left = ansi.Truncate(left, room, "…")
		lw = ansi.StringWidth(left)
	}
	return left + strings.Repeat(" ", max(width-lw-rw, 2)) + right
}
