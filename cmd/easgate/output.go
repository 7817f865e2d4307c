package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"easgate/engine"
)

// Output formats of the list commands.
const (
	outJSON = "json"
	outCSV  = "csv"
	outText = "text"
)

// checkOutput validates --output against the formats a command offers.
func checkOutput(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return usageError{fmt.Errorf("--output %q: want %s", got, strings.Join(allowed, ", "))}
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal, for text output that adapts.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// table prints rows under a header, aligned, with untrusted cells made safe.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(engine.Printable(c), "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// csvWriter writes CSV with cells that a spreadsheet would run as a formula
// defused (a leading ', as OWASP recommends), and untrusted text made safe.
type csvWriter struct{ w *csv.Writer }

func newCSV(w io.Writer, header ...string) *csvWriter {
	c := &csvWriter{w: csv.NewWriter(w)}
	c.row(header...)
	return c
}

func (c *csvWriter) row(cells ...string) {
	for i, s := range cells {
		s = engine.Printable(s)
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			s = "'" + s
		}
		cells[i] = s
	}
	_ = c.w.Write(cells)
}

func (c *csvWriter) flush() error {
	c.w.Flush()
	return c.w.Error()
}

// writeCSVOf writes rows of a JSON-tagged struct type as CSV, one column per
// JSON field in declaration order, so the CSV and JSON outputs of a command
// name the same fields. Nulls become empty cells; times are RFC 3339.
func writeCSVOf[T any](w io.Writer, rows []T) error {
	typ := reflect.TypeFor[T]()
	var header []string
	var fields []int
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		header = append(header, name)
		fields = append(fields, i)
	}
	c := newCSV(w, header...)
	for _, r := range rows {
		v := reflect.ValueOf(r)
		cells := make([]string, len(fields))
		for j, i := range fields {
			cells[j] = csvCell(v.Field(i))
		}
		c.row(cells...)
	}
	return c.flush()
}

func csvCell(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return rfc(x)
	case fmt.Stringer:
		return x.String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = csvCell(v.Index(i))
		}
		return strings.Join(parts, ";")
	}
	return fmt.Sprint(v.Interface())
}
