package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// header is the top of the screen: the title and READ-ONLY badge, the
// connection state of Exchange and Intune, the device counts, the last run
// and the progress of a run under way.
type header struct {
	styles   *styles
	title    string
	readOnly bool
	width    int

	status   engine.Status
	loaded   bool // status has been read at least once
	progress *engine.Progress
}

// setStatus takes a fresh overview.
func (h *header) setStatus(st engine.Status) { h.status, h.loaded = st, true }

// Height is how many lines the header takes at its width: the counts take
// one line where they fit, two otherwise.
func (h *header) Height() int { return 2 + len(h.countLines()) }

// View renders the header; spin is the spinner's current frame.
func (h *header) View(spin string, now time.Time) string {
	lines := []string{h.titleLine(now)}
	lines = append(lines, h.countLines()...)
	lines = append(lines, h.runLine(spin, now))
	return strings.Join(lines, "\n")
}

// titleLine is the title, the badge and the connection states.
func (h *header) titleLine(now time.Time) string {
	left := h.styles.title.Render(clean(h.title))
	if h.readOnly || h.status.ReadOnly {
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
	if !h.loaded {
		return h.styles.muted.Render("connecting to the engine…")
	}
	var b strings.Builder
	b.WriteString(h.styles.label.Render("Exchange"))
	if len(h.status.Exchange) == 0 {
		b.WriteString(" " + h.mark(engine.Health{}, now))
	}
	for _, s := range h.status.Exchange {
		name := clean(s.Name)
		if short {
			name, _, _ = strings.Cut(name, ".")
		}
		b.WriteString(" " + name + " " + h.mark(s, now))
	}
	b.WriteString("  " + h.styles.label.Render("Intune") + " " + h.mark(h.status.Intune, now))
	return b.String()
}

// mark is one connection's state as a symbol that reads without colour:
// ✓ reachable, ✗ failing or cooling down, ? not contacted yet.
func (h *header) mark(s engine.Health, now time.Time) string {
	switch {
	case !s.CoolDownUntil.IsZero() && now.Before(s.CoolDownUntil):
		return h.styles.bad.Render("✗")
	case s.OK:
		return h.styles.ok.Render("✓")
	case s.Error != "":
		return h.styles.bad.Render("✗")
	case s.LastCall.IsZero():
		return h.styles.muted.Render("?")
	}
	return h.styles.bad.Render("✗")
}

// countLines renders the device counts on one line, or on two where one
// does not fit.
func (h *header) countLines() []string {
	c := h.status.Counts
	item := func(label string, n int) string {
		v := "—"
		if h.loaded {
			v = count(n)
		}
		return h.styles.label.Render(label) + " " + v
	}
	devices := []string{item("EAS devices", c.EASDevices), item("merged", c.Merged), item("unmerged", c.Unmerged)}
	access := []string{item("allowed", c.Allowed), item("blocked", c.Blocked),
		item("quarantined", c.Quarantined), item("exempt", c.Exempt)}
	one := strings.Join(append(append([]string{}, devices...), access...), "  ")
	if ansi.StringWidth(one) <= h.width {
		return []string{one}
	}
	return []string{
		ansi.Truncate(strings.Join(devices, "  "), h.width, "…"),
		ansi.Truncate(strings.Join(access, "  "), h.width, "…"),
	}
}

// runLine is the last run on the left and, on the right, the run under way,
// a held plan or the engine's first warning.
func (h *header) runLine(spin string, now time.Time) string {
	left := h.styles.label.Render("Last run") + " "
	switch r := h.status.LastRun; {
	case !h.loaded:
		left += "—"
	case r == nil:
		left += "none yet: press s to sync"
	default:
		at := r.Finished
		if at.IsZero() {
			at = r.Started
		}
		left += fmt.Sprintf("%s %s %s (%s, took %s)", r.Kind,
			h.styles.tone(runStatusTone(r.Status)).Render(string(r.Status)),
			stamp(at, now.Location(), layoutDateTime), ago(now, at), span(r.Duration()))
	}
	var right string
	switch st := &h.status; {
	case h.progress != nil:
		kind := h.progress.Run.Kind
		if kind == "" {
			kind = engine.RunFull
		}
		right = h.styles.accent.Render(spin + " " + string(kind) + " sync: " + progressText(h.progress))
	case st.HeldPlan != nil:
		right = h.styles.warn.Render(fmt.Sprintf("⚠ plan held by the safety brake (%s new blocks)",
			count(st.HeldPlan.NewBlocks())))
	case len(st.Warnings) == 1:
		right = h.styles.warn.Render("⚠ " + clean(st.Warnings[0]))
	case len(st.Warnings) > 1:
		right = h.styles.warn.Render(fmt.Sprintf("⚠ %s (+%d more)", clean(st.Warnings[0]), len(st.Warnings)-1))
	}
	right = ansi.Truncate(right, max(h.width*3/5, 20), "…")
	return spread(left, right, h.width)
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
