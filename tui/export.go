package tui

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// exportedMsg says a CSV export ended.
type exportedMsg struct {
	file string
	rows int
	err  error
}

// exportCSV writes rows (those idx names, in that order) to a new CSV file
// in dir, named after the view and the time, and reports the file's name.
// It runs as a command: the rows are never modified once loaded.
func exportCSV[T any](dir, view string, now time.Time, head []string, rows []T, idx []int, cells func(*T) []string) tea.Cmd {
	return func() tea.Msg {
		name, err := writeCSV(dir, view, now, head, rows, idx, cells)
		if err != nil {
			return exportedMsg{err: fmt.Errorf("export %s to CSV: %w", view, err)}
		}
		return exportedMsg{file: name, rows: len(idx)}
	}
}

// writeCSV creates the file (never overwriting one) and writes it.
func writeCSV[T any](dir, view string, now time.Time, head []string, rows []T, idx []int, cells func(*T) []string) (string, error) {
	base := "easgate-" + view + "-" + now.Format("20060102-150405")
	var f *os.File
	var name string
	for n := 1; ; n++ {
		name = base + ".csv"
		if n > 1 {
			name = base + "-" + strconv.Itoa(n) + ".csv"
		}
		var err error
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || n >= 100 {
			return "", err
		}
	}
	w := csv.NewWriter(f)
	_ = w.Write(defuseAll(head))
	for _, i := range idx {
		_ = w.Write(defuseAll(cells(&rows[i])))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return name, nil
}

// defuseAll makes each cell safe to open in a spreadsheet: untrusted text
// loses its control characters, and a cell a spreadsheet would run as a
// formula (one starting with = + - @, a tab or a carriage return) gets a
// leading ', as OWASP recommends.
func defuseAll(cells []string) []string {
	for i, s := range cells {
		cells[i] = defuse(engine.Printable(s))
	}
	return cells
}

// defuse prefixes a formula-looking cell with '.
func defuse(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvTime formats a time for a CSV cell: RFC 3339 in UTC, empty when zero.
func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
