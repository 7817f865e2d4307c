package tui

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// runsView lists the sync run history, newest first, with a run under way
// shown live at the top.
type runsView struct {
	env     *env
	table   *table[runRow]
	runs    []engine.Run
	search  []string
	loaded  bool
	running *engine.Progress
}

// runRow is a run, or the run under way with its progress.
type runRow struct {
	run      engine.Run
	progress *engine.Progress
}

// newRunsView returns the Sync runs view.
func newRunsView(e *env) *runsView {
	cols := []column{
		{title: "Started", min: 16, max: 16},
		{title: "Kind", min: 5, max: 5},
		{title: "Trigger", min: 8, max: 8, drop: 1},
		{title: "Status", min: 9, max: 9},
		{title: "Duration", min: 8, max: 8, right: true, drop: 2},
		{title: "Devices", min: 7, max: 8, right: true, drop: 3},
		{title: "Changes", min: 9, max: 11, right: true},
		{title: "Failed", min: 6, max: 6, right: true, drop: 5},
		{title: "Mails", min: 5, max: 6, right: true, drop: 4},
		{title: "Notes", min: 10, weight: 1, drop: 6},
	}
	cells := func(r *runRow, now time.Time, out []cell) {
		run := &r.run
		c := run.Counts
		out[0] = cell{text: stamp(run.Started, now.Location(), layoutDateTime)}
		out[1] = cell{text: string(run.Kind)}
		out[2] = cell{text: string(run.Trigger)}
		out[3] = cell{text: string(run.Status), tone: runStatusTone(run.Status)}
		if r.progress != nil {
			elapsed := time.Duration(0)
			if !run.Started.IsZero() {
				elapsed = now.Sub(run.Started)
			}
			out[4] = cell{text: span(elapsed), tone: toneAccent}
			out[5] = cell{text: "—"}
			out[6] = cell{text: "—"}
			out[7] = cell{text: "—"}
			out[8] = cell{text: "—"}
			out[9] = cell{text: progressText(r.progress), tone: toneAccent}
			return
		}
		out[4] = cell{text: span(run.Duration())}
		out[5] = cell{text: count(c.EASDevices)}
		out[6] = cell{text: count(c.ChangesApplied) + "/" + count(c.ChangesPlanned)}
		failed := cell{text: count(c.ChangesFailed)}
		if c.ChangesFailed > 0 {
			failed.tone = toneBad
		}
		out[7] = failed
		out[8] = cell{text: count(c.NotificationsSent)}
		out[9] = cell{text: runNote(run), tone: toneMuted}
	}
	same := func(a, b *runRow) bool { return a.run.ID == b.run.ID }
	t := newTable(e.styles, e.keys, e.now, "sync runs", cols, cells, same)
	t.sorts = []func(a, b *runRow) int{
		func(a, b *runRow) int { return a.run.Started.Compare(b.run.Started) },
		func(a, b *runRow) int { return strings.Compare(string(a.run.Kind), string(b.run.Kind)) },
		func(a, b *runRow) int { return strings.Compare(string(a.run.Trigger), string(b.run.Trigger)) },
		func(a, b *runRow) int { return strings.Compare(string(a.run.Status), string(b.run.Status)) },
		func(a, b *runRow) int { return cmp.Compare(a.run.Duration(), b.run.Duration()) },
		func(a, b *runRow) int { return cmp.Compare(a.run.Counts.EASDevices, b.run.Counts.EASDevices) },
		func(a, b *runRow) int { return cmp.Compare(a.run.Counts.ChangesPlanned, b.run.Counts.ChangesPlanned) },
		func(a, b *runRow) int { return cmp.Compare(a.run.Counts.ChangesFailed, b.run.Counts.ChangesFailed) },
		func(a, b *runRow) int {
			return cmp.Compare(a.run.Counts.NotificationsSent, b.run.Counts.NotificationsSent)
		},
		nil,
	}
	t.csvHead = runCSVHead
	return &runsView{env: e, table: t}
}

// runNote is the one thing worth knowing about a finished run: its error,
// else its first problem.
func runNote(r *engine.Run) string {
	switch {
	case r.Error != "":
		return r.Error
	case len(r.Problems) == 1:
		return r.Problems[0]
	case len(r.Problems) > 1:
		return fmt.Sprintf("%s (and %d more problems)", r.Problems[0], len(r.Problems)-1)
	}
	return ""
}

// progressText says where a running run is: "applying changes 120/300".
func progressText(p *engine.Progress) string {
	s := phaseLabel(p.Phase)
	switch {
	case p.Total > 0:
		s += " " + count(p.Done) + "/" + count(p.Total)
	case p.Done > 0:
		s += " " + count(p.Done)
	}
	return s
}

// runSearch is a run's filter text.
func runSearch(r *engine.Run) string {
	return searchText(r.ID, string(r.Kind), string(r.Trigger), string(r.Status), r.Actor,
		r.Started.Format(layoutDateTime), r.Error, r.Server)
}

// runsMsg carries the run history, newest first, with each run's filter text.
type runsMsg struct {
	runs   []engine.Run
	search []string
	err    error
}

// fetchRuns reads the run history.
func fetchRuns(e *env) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		runs, err := e.api.Runs(ctx, runsLimit)
		if err != nil {
			return runsMsg{err: fmt.Errorf("read sync runs: %w", err)}
		}
		texts := make([]string, len(runs))
		for i := range runs {
			texts[i] = runSearch(&runs[i])
		}
		return runsMsg{runs: runs, search: texts}
	}
}

// setRunning shows the run under way at the top, or no run when p is nil.
func (v *runsView) setRunning(p *engine.Progress) {
	if p != nil && p.Run.ID == "" {
		p = nil // requested, but the engine has not named the run yet
	}
	v.running = p
	v.rebuild()
}

// rebuild puts the run under way (unless the history already holds it) in
// front of the history.
func (v *runsView) rebuild() tea.Cmd {
	if !v.loaded {
		return nil
	}
	rows := make([]runRow, 0, len(v.runs)+1)
	search := make([]string, 0, len(v.runs)+1)
	if p := v.running; p != nil && !v.holds(p.Run.ID) {
		run := p.Run
		run.Status = engine.StatusRunning
		rows = append(rows, runRow{run: run, progress: p})
		search = append(search, runSearch(&run))
	}
	for i := range v.runs {
		rows = append(rows, runRow{run: v.runs[i]})
	}
	search = append(search, v.search...)
	return v.table.setRows(rows, search)
}

// holds reports whether the history holds a run.
func (v *runsView) holds(id string) bool {
	for i := range v.runs {
		if v.runs[i].ID == id {
			return true
		}
	}
	return false
}

// Update takes the run history when it arrives and keys when active.
func (v *runsView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case runsMsg:
		if msg.err != nil {
			v.table.setError(msg.err)
			return nil
		}
		v.runs, v.search, v.loaded = msg.runs, msg.search, true
		return v.rebuild()
	case tea.KeyPressMsg, sortedMsg, filteredMsg:
		return v.table.Update(msg)
	}
	return nil
}

// open opens the detail page of the run under the cursor.
func (v *runsView) open(e *env) page {
	r := v.table.current()
	if r == nil || r.run.ID == "" || r.progress != nil {
		return nil
	}
	return newRunDetail(e, r.run)
}

// runCSVHead is the header of a run history export.
var runCSVHead = []string{"id", "kind", "trigger", "actor", "status", "started", "finished", "server", "eas_devices",
	"mdm_devices", "changes_planned", "changes_applied", "changes_failed", "notifications_sent", "error", "problems"}

// runCSVRow is one run in an export.
func runCSVRow(r *runRow) []string {
	c := r.run.Counts
	return []string{r.run.ID, string(r.run.Kind), string(r.run.Trigger), r.run.Actor, string(r.run.Status),
		csvTime(r.run.Started), csvTime(r.run.Finished), r.run.Server, strconv.Itoa(c.EASDevices), strconv.Itoa(c.MDMDevices),
		strconv.Itoa(c.ChangesPlanned), strconv.Itoa(c.ChangesApplied), strconv.Itoa(c.ChangesFailed),
		strconv.Itoa(c.NotificationsSent), r.run.Error, strings.Join(r.run.Problems, "; ")}
}

// export writes the runs the view shows to a CSV file.
func (v *runsView) export() tea.Cmd {
	rows, idx := v.table.exportRows()
	return exportCSV(v.env.exportDir, "runs", v.env.now(), runCSVHead, rows, idx, runCSVRow)
}

// View renders the table.
func (v *runsView) View() string { return v.table.View() }

// SetSize sizes the table.
func (v *runsView) SetSize(width, height int) { v.table.SetSize(width, height) }

// Title names the view.
func (v *runsView) Title() string { return tabTitles[tabRuns] }

// Count is how many runs the view holds.
func (v *runsView) Count() (int, bool) { return len(v.runs), v.loaded }

// Capturing reports whether the filter input is open.
func (v *runsView) Capturing() bool { return v.table.capturing() }

// Escape clears the filter.
func (v *runsView) Escape() bool { return v.table.escape() }

// HelpKeys returns the table's keys.
func (v *runsView) HelpKeys() ([]key.Binding, []helpGroup) {
	short, groups := v.table.helpKeys()
	if v.table.editing {
		return short, groups
	}
	return append(short, v.env.keys.open), groups
}

// wheel scrolls the table (the mouse wheel).
func (v *runsView) wheel(n int) { v.table.scroll(n) }

// click moves the cursor to a row.
func (v *runsView) click(y int) { v.table.click(y) }
