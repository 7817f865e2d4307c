package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// overviewView is the Overview: the health of each Exchange server and of
// Graph, the policy, the counts, the last and next runs, the phases of a
// run under way and every warning. It is drawn from the engine's overview,
// which the console keeps fresh.
type overviewView struct {
	env *env
	sc  *scroller
}

// newOverviewView returns the Overview.
func newOverviewView(e *env) *overviewView {
	return &overviewView{env: e, sc: newScroller(e.styles, e.keys, "")}
}

// labelWidth is the width of the Overview's labels.
const labelWidth = 10

// lines builds the Overview's lines at now.
func (v *overviewView) lines(now time.Time) []string {
	sh, s := v.env.shared, v.env.styles
	if !sh.loaded {
		return []string{s.muted.Render("  reading the engine's overview…")}
	}
	st := &sh.status
	width := max(v.sc.width, 40)
	var out []string
	add := func(l string) { out = append(out, l) }
	// row adds a labelled value, wrapped under its label.
	row := func(label, value string) {
		for i, l := range strings.Split(ansi.Wrap(value, width-labelWidth, " ·"), "\n") {
			if i > 0 {
				label = ""
			}
			add(s.label.Render(fmt.Sprintf("%-*s", labelWidth, label)) + strings.TrimLeft(l, " "))
		}
	}

	failed := false
	for _, h := range st.Exchange {
		if k := healthState(h, now); k == healthFailed || k == healthCooling {
			failed = true
		}
	}
	if len(st.Exchange) == 0 {
		row("Exchange", s.muted.Render("? no server contacted yet"))
	}
	for i, h := range st.Exchange {
		l := ""
		if i == 0 {
			l = "Exchange"
		}
		row(l, clean(h.Name)+"  "+v.health(h, now, failed))
	}
	row("Intune", clean(orDash(st.Intune.Name))+"  "+v.health(st.Intune, now, false))
	row("Policy", clean(orDash(st.Policy)))
	add("")

	c := st.Counts
	row("Devices", fmt.Sprintf("%s EAS · %s merged · %s unmerged · %s exempt · %s MDM",
		count(c.EASDevices), count(c.Merged), count(c.Unmerged), count(c.Exempt), count(c.MDMDevices)))
	row("Access", s.ok.Render(count(c.Allowed)+" allowed")+" · "+s.bad.Render(count(c.Blocked)+" blocked")+
		" · "+s.warn.Render(count(c.Quarantined)+" quarantined"))
	pending := count(st.Pending) + " notifications pending"
	if st.Pending == 1 {
		pending = "1 notification pending"
	}
	row("Mail", pending)
	switch r := st.LastRun; {
	case r == nil:
		row("Last run", "none yet: press s to sync")
	default:
		text := lastRunText(s, r, now)
		if r.Status != engine.StatusFailed {
			text += fmt.Sprintf(" · %s/%s changes · %s mails", count(r.Counts.ChangesApplied),
				count(r.Counts.ChangesPlanned), count(r.Counts.NotificationsSent))
		}
		row("Last run", text)
		if r.Error != "" {
			row("", s.bad.Render(clean(r.Error)))
		}
	}
	row("Next", "full "+when(st.NextFull, now)+" · quick "+when(st.NextQuick, now))
	if p := sh.progress; p != nil {
		kind := p.Run.Kind
		if kind == "" {
			kind = engine.RunFull
		}
		row("Running", s.accent.Render(string(kind)+" sync: "+phasesText(sh, p, now)))
	}

	var warnings []string
	if p := st.HeldPlan; p != nil {
		w := fmt.Sprintf("the safety brake holds plan %s: %s changes, %s new blocks", clean(p.ID),
			count(p.Changes), count(p.NewBlocks))
		if p.Brake != nil {
			w += " (" + clean(p.Brake.Reason) + ")"
		}
		warnings = append(warnings, w+"; press 6 to review it")
	}
	for _, w := range st.Warnings {
		if st.HeldPlan != nil && strings.HasPrefix(w, "safety brake holds a plan") {
			continue // said above, with what to do
		}
		warnings = append(warnings, clean(w))
	}
	if len(warnings) > 0 {
		add("")
		add(s.heading.Render("Warnings"))
		for _, w := range warnings {
			for i, l := range strings.Split(ansi.Wrap(w, width-2, " "), "\n") {
				mark := "  "
				if i == 0 {
					mark = s.warn.Render("⚠ ")
				}
				add(mark + strings.TrimLeft(l, " "))
			}
		}
	}
	return out
}

// health describes one connection in words that read without colour.
func (v *overviewView) health(h engine.Health, now time.Time, otherFailed bool) string {
	s := v.env.styles
	var text string
	switch healthState(h, now) {
	case healthOK:
		text = s.ok.Render("✓") + " reachable"
		if h.InUse {
			text = s.ok.Render("✓") + " in use"
			if otherFailed {
				text += s.warn.Render(" (failed over)")
			}
		}
	case healthUnknown:
		text = s.muted.Render("? not contacted yet")
	case healthCooling:
		text = s.bad.Render("✗ failed") + ", cooling down until " + stamp(h.CoolDownUntil, now.Location(), "15:04")
	case healthFailed:
		text = s.bad.Render("✗ failed")
	}
	if !h.LastCall.IsZero() {
		text += " · last call " + ago(now, h.LastCall)
	}
	if h.Error != "" {
		text += " · " + clean(h.Error)
	}
	return text
}

// when says when a scheduled run is due: "2026-03-03 06:00 (in 20h)".
func when(t, now time.Time) string {
	if t.IsZero() {
		return "not scheduled"
	}
	if !t.After(now) {
		return "due now"
	}
	return stamp(t, now.Location(), layoutDateTime) + " (in " + age(t, now) + ")"
}

// phasesText lists a run's phases: "✓ reading Exchange 2s · applying
// changes 120/300".
func phasesText(sh *shared, p *engine.Progress, now time.Time) string {
	var parts []string
	if sh.phaseRun == p.Run.ID && p.Run.ID != "" {
		for _, ph := range sh.phases {
			if ph.name == p.Phase {
				continue
			}
			end := ph.ended
			if end.IsZero() {
				end = now
			}
			parts = append(parts, "✓ "+phaseLabel(ph.name)+" "+span(end.Sub(ph.started)))
		}
	}
	parts = append(parts, progressText(p))
	return strings.Join(parts, " · ")
}

// Update scrolls.
func (v *overviewView) Update(msg tea.Msg) tea.Cmd {
	if _, ok := msg.(tea.KeyPressMsg); ok {
		v.sc.setHead(v.lines(v.env.now()))
		return v.sc.Update(msg)
	}
	return nil
}

// View renders the Overview.
func (v *overviewView) View() string {
	v.sc.setHead(v.lines(v.env.now()))
	return v.sc.View()
}

// SetSize sizes the page.
func (v *overviewView) SetSize(width, height int) { v.sc.SetSize(width, height) }

// Title names the view.
func (v *overviewView) Title() string { return tabTitles[tabOverview] }

// Count says the Overview has no rows.
func (v *overviewView) Count() (int, bool) { return -1, true }

// Capturing is never true: the Overview has no input.
func (v *overviewView) Capturing() bool { return false }

// Escape has nothing to clear.
func (v *overviewView) Escape() bool { return false }

// HelpKeys returns the scrolling keys.
func (v *overviewView) HelpKeys() ([]key.Binding, []helpGroup) { return v.sc.helpKeys() }

// wheel scrolls the page (the mouse wheel).
func (v *overviewView) wheel(n int) { v.sc.scroll(n) }
