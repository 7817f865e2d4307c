package tui

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// journalView is the Journal: every change easgate attempted and its
// result, every notification and every admin action, newest first,
// filterable with / (by user, device, run, actor, kind or words).
type journalView struct {
	env    *env
	table  *table[engine.JournalEntry]
	loaded bool
}

// journalMsg carries the newest journal entries, newest first, with their
// filter texts.
type journalMsg struct {
	entries []engine.JournalEntry
	search  []string
	err     error
}

// fetchJournal reads the newest journal entries.
func fetchJournal(e *env) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		js, err := e.api.Journal(ctx, engine.JournalQuery{Limit: journalLimit})
		if err != nil {
			return journalMsg{err: fmt.Errorf("read the journal: %w", err)}
		}
		js = reversed(js)
		search := make([]string, len(js))
		for i := range js {
			j := &js[i]
			mark, _ := journalMark(j)
			search[i] = searchText(string(j.Kind), mark, string(j.Device), j.RunID, j.Actor, j.Message, j.Error,
				j.Time.Format(layoutDateTime))
		}
		return journalMsg{entries: js, search: search}
	}
}

// newJournalView returns the Journal view.
func newJournalView(e *env) *journalView {
	cols := []column{
		{title: "Time", min: 19, max: 19},
		{title: " ", min: 1, max: 1},
		{title: "Kind", min: 6, max: 7, drop: 4},
		{title: "Device", min: 14, weight: 2, drop: 2},
		{title: "What", min: 20, weight: 5},
		{title: "By", min: 7, max: 12, drop: 3},
		{title: "Run", min: 10, max: 26, drop: 1},
	}
	cells := func(j *engine.JournalEntry, now time.Time, out []cell) {
		mark, tn := journalMark(j)
		out[0] = cell{text: stamp(j.Time, now.Location(), "2006-01-02 15:04:05")}
		out[1] = cell{text: mark, tone: tn}
		out[2] = cell{text: string(j.Kind)}
		out[3] = cell{text: orDash(string(j.Device))}
		what := j.Message
		if j.Error != "" {
			what += " · error: " + j.Error
		}
		out[4] = cell{text: what}
		if !j.OK && j.Stage != engine.StageBegin {
			out[4].tone = toneBad
		}
		out[5] = cell{text: j.Actor}
		out[6] = cell{text: orDash(j.RunID), tone: toneMuted}
	}
	same := func(a, b *engine.JournalEntry) bool { return a.Seq == b.Seq }
	t := newTable(e.styles, e.keys, e.now, "journal entries", cols, cells, same)
	text := func(f func(*engine.JournalEntry) string) func(a, b *engine.JournalEntry) int {
		return func(a, b *engine.JournalEntry) int { return compareFold(f(a), f(b)) }
	}
	t.sorts = []func(a, b *engine.JournalEntry) int{
		func(a, b *engine.JournalEntry) int { return a.Time.Compare(b.Time) }, nil,
		text(func(j *engine.JournalEntry) string { return string(j.Kind) }),
		text(func(j *engine.JournalEntry) string { return string(j.Device) }),
		text(func(j *engine.JournalEntry) string { return j.Message }),
		text(func(j *engine.JournalEntry) string { return j.Actor }),
		text(func(j *engine.JournalEntry) string { return j.RunID }),
	}
	t.csvHead = journalCSVHead
	return &journalView{env: e, table: t}
}

// journalCSVHead is the header of a journal export.
var journalCSVHead = []string{"seq", "time", "kind", "stage", "ok", "device", "run_id", "actor", "message", "error"}

// journalCSVRow is one journal entry in an export.
func journalCSVRow(j *engine.JournalEntry) []string {
	return []string{strconv.FormatUint(j.Seq, 10), csvTime(j.Time), string(j.Kind), j.Stage, strconv.FormatBool(j.OK),
		string(j.Device), j.RunID, j.Actor, j.Message, j.Error}
}

// Update takes the entries and keys.
func (v *journalView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case journalMsg:
		if msg.err != nil {
			v.table.setError(msg.err)
			return nil
		}
		v.loaded = true
		return v.table.setRows(msg.entries, msg.search)
	case tea.KeyPressMsg, sortedMsg, filteredMsg:
		return v.table.Update(msg)
	}
	return nil
}

// open opens the page of the entry's device, or else of its run.
func (v *journalView) open(e *env) page {
	j := v.table.current()
	if j == nil {
		return nil
	}
	if j.Device != "" {
		mb, id := j.Device.Split()
		return newDeviceDetail(e, engine.DeviceRecord{EASDevice: engine.EASDevice{Mailbox: mb, DeviceID: id}})
	}
	if j.RunID != "" {
		return newRunDetail(e, engine.Run{ID: j.RunID})
	}
	return nil
}

// export writes the entries the view shows to a CSV file.
func (v *journalView) export() tea.Cmd {
	rows, idx := v.table.exportRows()
	return exportCSV(v.env.exportDir, "journal", v.env.now(), journalCSVHead, rows, idx, journalCSVRow)
}

// View renders the table.
func (v *journalView) View() string { return v.table.View() }

// SetSize sizes the table.
func (v *journalView) SetSize(width, height int) { v.table.SetSize(width, height) }

// Title names the view.
func (v *journalView) Title() string { return tabTitles[tabJournal] }

// Count is how many entries the view holds.
func (v *journalView) Count() (int, bool) { return v.table.total(), v.table.loaded }

// Capturing reports whether the filter input is open.
func (v *journalView) Capturing() bool { return v.table.capturing() }

// Escape clears the filter.
func (v *journalView) Escape() bool { return v.table.escape() }

// HelpKeys returns the table's keys.
func (v *journalView) HelpKeys() ([]key.Binding, []helpGroup) {
	short, groups := v.table.helpKeys()
	if v.table.editing {
		return short, groups
	}
	return append(short, v.env.keys.open), groups
}

// wheel scrolls the table (the mouse wheel).
func (v *journalView) wheel(n int) { v.table.scroll(n) }

// click moves the cursor to a row.
func (v *journalView) click(y int) { v.table.click(y) }
