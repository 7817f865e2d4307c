package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// runDetail is a run's page: what it was, its phase timings and counts,
// its problems and error, the plan it holds (while braked), and every
// journal entry it wrote: each change and its result.
type runDetail struct {
	env    *env
	run    engine.Run
	detail *engine.RunDetail
	err    error
	loaded bool
	sc     *scroller
	width  int
}

// runDetailMsg carries a run's detail and its journal as lines.
type runDetailMsg struct {
	id     string
	detail *engine.RunDetail
	lines  []line
	search []string
	err    error
}

// newRunDetail returns the page of a run; it shows what the history row
// knows until the detail arrives.
func newRunDetail(e *env, r engine.Run) *runDetail {
	return &runDetail{env: e, run: r, sc: newScroller(e.styles, e.keys, "journal entries")}
}

// load reads the run's detail.
func (v *runDetail) load() tea.Cmd {
	e, id := v.env, v.run.ID
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		d, err := e.api.RunDetail(ctx, id)
		if err != nil {
			return runDetailMsg{id: id, err: fmt.Errorf("read run %s: %w", id, err)}
		}
		lines, search := journalLines(d.Journal, e.now().Location())
		return runDetailMsg{id: id, detail: d, lines: lines, search: search}
	}
}

// journalLines turns journal entries into page lines, oldest first, with
// their filter texts.
func journalLines(js []engine.JournalEntry, loc *time.Location) ([]line, []string) {
	lines := make([]line, len(js))
	search := make([]string, len(js))
	for i := range js {
		lines[i] = journalLine(&js[i], loc)
		search[i] = strings.ToLower(lines[i].text)
	}
	return lines, search
}

// journalLine is one journal entry on one line.
func journalLine(j *engine.JournalEntry, loc *time.Location) line {
	mark, tn := journalMark(j)
	var b strings.Builder
	b.WriteString(stamp(j.Time, loc, "2006-01-02 15:04:05"))
	b.WriteString(" " + mark + " " + fmt.Sprintf("%-7s", clean(string(j.Kind))))
	if j.Device != "" {
		mb, _ := j.Device.Split()
		b.WriteString(" " + clean(mb) + ":")
	}
	b.WriteString(" " + clean(j.Message))
	if j.Error != "" {
		b.WriteString(" · error: " + clean(j.Error))
	}
	if j.Actor != "" && j.Actor != "easgate" {
		b.WriteString(" · by " + clean(j.Actor))
	}
	return line{text: b.String(), tone: tn}
}

// journalMark says how a journal entry ended: ✓ done, ✗ failed, … begun.
func journalMark(j *engine.JournalEntry) (string, tone) {
	switch {
	case j.Stage == engine.StageBegin:
		return "…", toneMuted
	case j.OK:
		return "✓", toneNormal
	}
	return "✗", toneBad
}

// build lays the page out for the current width.
func (v *runDetail) build() {
	s := v.env.styles
	now := v.env.now()
	loc := now.Location()
	r := &v.run
	if v.detail != nil {
		r = &v.detail.Run
	}
	label := func(l string) string { return s.label.Render(fmt.Sprintf("%-*s", labelWidth, l)) }
	var out []string
	add := func(l string) { out = append(out, l) }
	add(s.heading.Render("Run " + clean(r.ID)))
	who := string(r.Trigger)
	if r.Actor != "" {
		who += " by " + clean(r.Actor)
	}
	add(label("Run") + fmt.Sprintf("%s sync · %s · ", r.Kind, who) + s.tone(runStatusTone(r.Status)).Render(string(r.Status)))
	times := "started " + stamp(r.Started, loc, "2006-01-02 15:04:05")
	if !r.Finished.IsZero() {
		times += " · finished " + stamp(r.Finished, loc, "15:04:05") + " · took " + span(r.Duration())
	}
	if r.Server != "" {
		times += " · Exchange server " + clean(r.Server)
	}
	add(label("When") + times)
	c := r.Counts
	add(label("Devices") + fmt.Sprintf("%s EAS · %s MDM · %s merged · %s unmerged · %s exempt",
		count(c.EASDevices), count(c.MDMDevices), count(c.Merged), count(c.Unmerged), count(c.Exempt)))
	add(label("Access") + fmt.Sprintf("%s allowed · %s blocked · %s quarantined", count(c.Allowed), count(c.Blocked), count(c.Quarantined)))
	failed := count(c.ChangesFailed) + " failed"
	if c.ChangesFailed > 0 {
		failed = s.bad.Render(failed)
	}
	add(label("Changes") + fmt.Sprintf("%s planned · %s applied · ", count(c.ChangesPlanned), count(c.ChangesApplied)) +
		failed + " · " + count(c.NotificationsSent) + " mails sent")
	if r.PlanID != "" {
		p := clean(r.PlanID)
		if v.detail != nil && v.detail.Plan != nil {
			p += s.warn.Render(" · held by the safety brake: press 6 to review it")
		}
		add(label("Plan") + p)
	}
	if r.Error != "" {
		add(label("Error") + s.bad.Render(clean(r.Error)))
	}
	if len(r.Phases) > 0 {
		add("")
		add(s.heading.Render("Phases"))
		total := r.Duration()
		for _, ph := range r.Phases {
			l := fmt.Sprintf("  %-18s %8s  ", phaseLabel(ph.Name), span(ph.Duration))
			if total > 0 {
				l += bar(int(ph.Duration), int(total), 20)
			}
			if ph.Error != "" {
				l += " " + s.bad.Render("✗ "+clean(ph.Error))
			}
			add(l)
		}
	}
	if len(r.Problems) > 0 {
		add("")
		add(s.heading.Render(fmt.Sprintf("Problems (%d)", len(r.Problems))))
		for _, p := range r.Problems {
			add(s.warn.Render("⚠ ") + clean(p))
		}
	}
	add("")
	switch {
	case v.err != nil:
		add(s.bad.Render("could not read the run's journal: " + clean(v.err.Error())))
	case !v.loaded:
		add(s.muted.Render("reading the run's journal…"))
	default:
		add(s.heading.Render(fmt.Sprintf("Journal: every change and its result (%s entries)", count(len(v.sc.list)))))
		if len(v.sc.list) == 0 {
			add(s.muted.Render("  the run wrote no journal entries"))
		}
	}
	v.sc.setHead(out)
}

// Update takes the detail and keys.
func (v *runDetail) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case runDetailMsg:
		if msg.id != v.run.ID {
			return nil
		}
		v.loaded, v.err = true, msg.err
		if msg.err == nil {
			v.detail = msg.detail
			v.sc.setList(msg.lines, msg.search)
		}
		v.build()
	case tea.KeyPressMsg:
		return v.sc.Update(msg)
	}
	return nil
}

// View renders the page.
func (v *runDetail) View() string { return v.sc.View() }

// SetSize sizes the page and lays it out again.
func (v *runDetail) SetSize(width, height int) {
	v.sc.SetSize(width, height)
	if width != v.width {
		v.width = width
		v.build()
	}
}

// Title names the page.
func (v *runDetail) Title() string { return "Run " + clean(v.run.ID) }

// Count is how many journal entries the page holds.
func (v *runDetail) Count() (int, bool) { return len(v.sc.list), v.loaded }

// Capturing reports whether the filter input is open.
func (v *runDetail) Capturing() bool { return v.sc.capturing() }

// Escape clears the filter.
func (v *runDetail) Escape() bool { return v.sc.escape() }

// HelpKeys returns the page's keys.
func (v *runDetail) HelpKeys() ([]key.Binding, []helpGroup) {
	short, groups := v.sc.helpKeys()
	if v.sc.editing {
		return short, groups
	}
	return append(short, v.env.keys.back), groups
}

// wheel scrolls the page (the mouse wheel).
func (v *runDetail) wheel(n int) { v.sc.scroll(n) }
