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

// logsEvery is how often the Log view re-reads the engine's log lines while
// it shows.
const logsEvery = 2 * time.Second

// logsView is the Log: the engine's recent log lines, newest first,
// re-read while the view shows.
type logsView struct {
	env   *env
	table *table[engine.LogEntry]
}

// logsMsg carries the newest log lines, newest first.
type logsMsg struct {
	entries []engine.LogEntry
	search  []string
	err     error
}

// fetchLogs reads the newest log lines.
func fetchLogs(e *env) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		ls, err := e.api.Logs(ctx, logsLimit)
		if err != nil {
			return logsMsg{err: fmt.Errorf("read the log: %w", err)}
		}
		ls = reversed(ls)
		search := make([]string, len(ls))
		for i := range ls {
			search[i] = searchText(ls[i].Level, ls[i].Message, ls[i].Attrs)
		}
		return logsMsg{entries: ls, search: search}
	}
}

// newLogsView returns the Log view.
func newLogsView(e *env) *logsView {
	cols := []column{
		{title: "Time", min: 14, max: 14},
		{title: "Level", min: 5, max: 5},
		{title: "Message", min: 20, weight: 2},
		{title: "Attributes", min: 10, weight: 3, drop: 1},
	}
	cells := func(l *engine.LogEntry, now time.Time, out []cell) {
		out[0] = cell{text: stamp(l.Time, now.Location(), "01-02 15:04:05")}
		out[1] = cell{text: strings.ToLower(l.Level), tone: levelTone(l.Level)}
		out[2] = cell{text: l.Message}
		out[3] = cell{text: l.Attrs, tone: toneMuted}
	}
	same := func(a, b *engine.LogEntry) bool { return a.Time.Equal(b.Time) && a.Message == b.Message }
	t := newTable(e.styles, e.keys, e.now, "log lines", cols, cells, same)
	t.csvHead = logCSVHead
	return &logsView{env: e, table: t}
}

// logCSVHead is the header of a log export.
var logCSVHead = []string{"time", "level", "message", "attrs"}

// logCSVRow is one log line in an export.
func logCSVRow(l *engine.LogEntry) []string {
	return []string{l.Time.UTC().Format(time.RFC3339Nano), l.Level, l.Message, l.Attrs}
}

// export writes the lines the view shows to a CSV file.
func (v *logsView) export() tea.Cmd {
	rows, idx := v.table.exportRows()
	return exportCSV(v.env.exportDir, "log", v.env.now(), logCSVHead, rows, idx, logCSVRow)
}

// levelTone is the tone of a log level.
func levelTone(l string) tone {
	switch strings.ToLower(l) {
	case "error":
		return toneBad
	case "warn", "warning":
		return toneWarn
	case "debug":
		return toneMuted
	}
	return toneNormal
}

// Update takes the lines and keys.
func (v *logsView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case logsMsg:
		if msg.err != nil {
			v.table.setError(msg.err)
			return nil
		}
		return v.table.setRows(msg.entries, msg.search)
	case tea.KeyPressMsg, sortedMsg, filteredMsg:
		return v.table.Update(msg)
	}
	return nil
}

// View renders the table.
func (v *logsView) View() string { return v.table.View() }

// SetSize sizes the table.
func (v *logsView) SetSize(width, height int) { v.table.SetSize(width, height) }

// Title names the view.
func (v *logsView) Title() string { return tabTitles[tabLog] }

// Count is how many lines the view holds.
func (v *logsView) Count() (int, bool) { return v.table.total(), v.table.loaded }

// Capturing reports whether the filter input is open.
func (v *logsView) Capturing() bool { return v.table.capturing() }

// Escape clears the filter.
func (v *logsView) Escape() bool { return v.table.escape() }

// HelpKeys returns the table's keys.
func (v *logsView) HelpKeys() ([]key.Binding, []helpGroup) { return v.table.helpKeys() }

// wheel scrolls the table (the mouse wheel).
func (v *logsView) wheel(n int) { v.table.scroll(n) }

// click moves the cursor to a row.
func (v *logsView) click(y int) { v.table.click(y) }
