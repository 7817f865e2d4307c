package tui

import (
	"strings"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// column describes one table column and how it gives way when the terminal
// is narrow.
type column struct {
	title string
	min   int // never narrower; a column that cannot get min is hidden
	max   int // fixed columns grow up to max; 0 makes the column flexible
	// weight shares the width left over among flexible columns.
	weight int
	// drop orders which columns hide first when even the minimum widths do
	// not fit: the highest drop goes first; 0 never hides.
	drop  int
	right bool // right-aligned (numbers)
}

// cell is one rendered value. Text may be untrusted: the table cleans it.
type cell struct {
	text string
	tone tone
}

// gutter is the width of the cursor marker in front of each row.
const gutter = 2

// table is a scrolling table that renders only the rows on screen, so its
// cost per frame does not depend on how many rows it holds. Rows are values
// of T; a view supplies the columns and how to render a row's cells.
type table[T any] struct {
	styles *styles
	keys   *keyMap
	now    func() time.Time
	cols   []column
	cells  func(row *T, now time.Time, out []cell) // fills out, one cell per column
	same   func(a, b *T) bool                      // keeps the cursor on a row across reloads
	noun   string                                  // "unmerged devices", for empty and count lines

	rows     []T
	search   []string // lower-cased, cleaned text of each row, for the filter
	index    []int    // the rows the filter matches, in order; nil when there is no filter
	needle   string   // the filter index was computed for
	loaded   bool
	loadErr  string // why the rows could not be read, while none are loaded
	filter   string
	editing  bool // the filter input has the keyboard
	cursor   int  // position in the filtered rows
	offset   int  // first filtered row on screen
	width    int
	height   int // lines for the whole table: column titles, body, footer
	shown    []int
	widths   []int
	scratch  []cell
	lineBuff strings.Builder
}

// newTable returns an empty table.
func newTable[T any](st *styles, keys *keyMap, now func() time.Time, noun string, cols []column,
	cells func(*T, time.Time, []cell), same func(a, b *T) bool) *table[T] {
	return &table[T]{styles: st, keys: keys, now: now, noun: noun, cols: cols, cells: cells, same: same,
		scratch: make([]cell, len(cols))}
}

// setRows replaces the rows. search holds each row's filter text (see
// searchText); the cursor stays on the same row when it is still there,
// and at the same position when it is not.
func (t *table[T]) setRows(rows []T, search []string) {
	// The cursor follows its row, except at the very top: there it stays,
	// so that a list whose newest entries come first shows them.
	var keep *T
	if r := t.selected(); r != nil && t.cursor > 0 {
		v := *r
		keep = &v
	}
	screenRow := t.cursor - t.offset
	t.rows, t.search, t.loaded, t.loadErr = rows, search, true, ""
	t.index, t.needle = nil, "" // the old matches index the old rows
	t.refilter()
	// A row that went away leaves the cursor where it was.
	if keep != nil {
		for i := range t.len() {
			if t.same(t.row(i), keep) {
				t.cursor = i
				break
			}
		}
	}
	t.offset = t.cursor - screenRow
	t.clamp()
}

// setError records that the rows could not be read. Rows already loaded
// stay on screen; the status line carries the error.
func (t *table[T]) setError(err error) { t.loadErr = clean(err.Error()) }

// len is the number of rows the filter lets through.
func (t *table[T]) len() int {
	if t.index != nil {
		return len(t.index)
	}
	return len(t.rows)
}

// row returns the i-th row the filter lets through.
func (t *table[T]) row(i int) *T {
	if t.index != nil {
		return &t.rows[t.index[i]]
	}
	return &t.rows[i]
}

// selected returns the row under the cursor, or nil.
func (t *table[T]) selected() *T {
	if t.cursor < 0 || t.cursor >= t.len() {
		return nil
	}
	return t.row(t.cursor)
}

// setFilter filters the rows by a case-insensitive substring.
func (t *table[T]) setFilter(f string) {
	if f == t.filter {
		return
	}
	t.filter = f
	t.refilter()
	t.cursor, t.offset = 0, 0
}

// refilter recomputes which rows match the filter. A filter that only
// narrows the last one (a character typed) scans the last matches instead
// of every row.
func (t *table[T]) refilter() {
	needle := strings.ToLower(strings.TrimSpace(t.filter))
	if needle == "" {
		t.index, t.needle = nil, ""
		return
	}
	if t.index != nil && t.needle != "" && strings.Contains(needle, t.needle) {
		idx := t.index[:0] // filtering in place: the write never passes the read
		for _, i := range t.index {
			if strings.Contains(t.search[i], needle) {
				idx = append(idx, i)
			}
		}
		t.index, t.needle = idx, needle
		return
	}
	idx := t.index[:0]
	if idx == nil {
		idx = make([]int, 0, 64)
	}
	for i, s := range t.search {
		if strings.Contains(s, needle) {
			idx = append(idx, i)
		}
	}
	t.index, t.needle = idx, needle
}

// SetSize sets the table's width and its height in lines.
func (t *table[T]) SetSize(width, height int) {
	if width == t.width && height == t.height && t.shown != nil {
		return
	}
	t.width, t.height = width, height
	t.shown, t.widths = layoutColumns(t.cols, width-gutter)
	t.clamp()
}

// body is the number of rows on screen.
func (t *table[T]) body() int { return max(t.height-2, 1) }

// clamp keeps the cursor on a row and the cursor row on screen.
func (t *table[T]) clamp() {
	n := t.len()
	t.cursor = min(max(t.cursor, 0), max(n-1, 0))
	b := t.body()
	if t.cursor < t.offset {
		t.offset = t.cursor
	}
	if t.cursor >= t.offset+b {
		t.offset = t.cursor - b + 1
	}
	t.offset = min(max(t.offset, 0), max(n-b, 0))
}

// capturing reports whether the table wants every key (the filter input is
// open), so the console's own keys must not act on them.
func (t *table[T]) capturing() bool { return t.editing }

// Update moves the cursor, pages, and edits the filter.
func (t *table[T]) Update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	if t.editing {
		t.edit(k)
		return nil
	}
	switch {
	case key.Matches(k, t.keys.up):
		t.cursor--
	case key.Matches(k, t.keys.down):
		t.cursor++
	case key.Matches(k, t.keys.pageUp):
		t.cursor -= t.body()
		t.offset -= t.body()
	case key.Matches(k, t.keys.pageDown):
		t.cursor += t.body()
		t.offset += t.body()
	case key.Matches(k, t.keys.top):
		t.cursor = 0
	case key.Matches(k, t.keys.bottom):
		t.cursor = t.len() - 1
	case key.Matches(k, t.keys.filter):
		t.editing = true
	case key.Matches(k, t.keys.clearFilter):
		t.setFilter("")
	}
	t.clamp()
	return nil
}

// edit handles a key while the filter input is open. The filter applies as
// it is typed; enter keeps it, esc clears it.
func (t *table[T]) edit(k tea.KeyPressMsg) {
	switch {
	case key.Matches(k, t.keys.acceptInput):
		t.editing = false
	case key.Matches(k, t.keys.clearFilter):
		t.editing = false
		t.setFilter("")
	case key.Matches(k, t.keys.deleteChar):
		f := t.filter
		if _, size := utf8.DecodeLastRuneInString(f); size > 0 {
			t.setFilter(f[:len(f)-size])
		}
	case key.Matches(k, t.keys.clearInput):
		t.setFilter("")
	case k.Text != "" && !k.Mod.Contains(tea.ModCtrl) && !k.Mod.Contains(tea.ModAlt):
		if utf8.RuneCountInString(t.filter) < maxFieldRunes {
			t.setFilter(t.filter + clean(k.Text))
		}
	}
	t.clamp()
}

// helpKeys returns the table's bindings for the help bar.
func (t *table[T]) helpKeys() (short []key.Binding, full [][]key.Binding) {
	if t.editing {
		keep, clr, del := t.keys.acceptInput, t.keys.clearFilter, t.keys.deleteChar
		return []key.Binding{keep, clr, del}, [][]key.Binding{{keep, clr, del, t.keys.clearInput}}
	}
	clr := t.keys.clearFilter
	clr.SetEnabled(t.filter != "")
	short = []key.Binding{t.keys.up, t.keys.down, t.keys.filter, clr}
	full = [][]key.Binding{
		{t.keys.up, t.keys.down, t.keys.pageUp, t.keys.pageDown},
		{t.keys.top, t.keys.bottom, t.keys.filter, clr},
	}
	return short, full
}

// View renders the column titles, the rows on screen and the footer, in
// exactly height lines of at most width cells.
func (t *table[T]) View() string {
	var b strings.Builder
	b.WriteString(t.titleLine())
	b.WriteByte('\n')
	bodyLines := t.body()
	n := t.len()
	now := t.now()
	for i := range bodyLines {
		r := t.offset + i
		switch {
		case r < n:
			b.WriteString(t.rowLine(t.row(r), r == t.cursor, now))
		case i == 0 && !t.loaded && t.loadErr != "":
			b.WriteString(t.styles.bad.Render(ansi.Truncate("  could not read "+t.noun+": "+t.loadErr, t.width, "…")))
		case i == 0 && !t.loaded:
			b.WriteString(t.styles.muted.Render(ansi.Truncate("  loading "+t.noun+"…", t.width, "…")))
		case i == 0 && n == 0 && t.filter != "":
			b.WriteString(t.styles.muted.Render(ansi.Truncate("  no "+t.noun+" match the filter", t.width, "…")))
		case i == 0 && n == 0:
			b.WriteString(t.styles.muted.Render(ansi.Truncate("  no "+t.noun, t.width, "…")))
		}
		b.WriteByte('\n')
	}
	b.WriteString(t.footerLine())
	return b.String()
}

// titleLine renders the column titles.
func (t *table[T]) titleLine() string {
	line := &t.lineBuff
	line.Reset()
	line.WriteString(strings.Repeat(" ", min(gutter, t.width)))
	for j, c := range t.shown {
		if j > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(fit(t.cols[c].title, t.widths[j], t.cols[c].right))
	}
	return t.styles.tableHeader.Render(ansi.Truncate(line.String(), t.width, ""))
}

// rowLine renders one row; the cursor row is marked and highlighted.
func (t *table[T]) rowLine(r *T, selected bool, now time.Time) string {
	for i := range t.scratch {
		t.scratch[i] = cell{}
	}
	t.cells(r, now, t.scratch)
	line := &t.lineBuff
	line.Reset()
	if selected {
		line.WriteString("> ")
	} else {
		line.WriteString("  ")
	}
	for j, c := range t.shown {
		if j > 0 {
			line.WriteByte(' ')
		}
		text := fit(clean(t.scratch[c].text), t.widths[j], t.cols[c].right)
		if tn := t.scratch[c].tone; tn != toneNormal && !selected {
			text = t.styles.tone(tn).Render(text)
		}
		line.WriteString(text)
	}
	out := line.String()
	if selected {
		w := ansi.StringWidth(out)
		if w < t.width {
			out += strings.Repeat(" ", t.width-w)
		}
		return t.styles.selected.Render(ansi.Truncate(out, t.width, ""))
	}
	return ansi.Truncate(out, t.width, "")
}

// footerLine renders the filter (or its input) on the left and the cursor
// position on the right.
func (t *table[T]) footerLine() string {
	var left string
	switch {
	case t.editing:
		left = "filter: " + t.filter + "▏"
	case t.filter != "":
		left = "filter: " + t.filter + "  (esc clears)"
	}
	right := ""
	if t.loaded {
		switch n := t.len(); {
		case n == 0:
			right = "0 " + t.noun
		case t.index != nil:
			right = count(t.cursor+1) + " of " + count(n) + " matching (" + count(len(t.rows)) + " in all)"
		default:
			right = count(t.cursor+1) + " of " + count(n)
		}
	}
	gap := t.width - ansi.StringWidth(left) - ansi.StringWidth(right) - 2
	if gap < 1 {
		return t.styles.footer.Render(ansi.Truncate("  "+left+" "+right, t.width, "…"))
	}
	return t.styles.footer.Render("  " + left + strings.Repeat(" ", gap) + right)
}

// fit pads or cuts s to exactly w cells.
func fit(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "…")
		sw = ansi.StringWidth(s)
	}
	pad := strings.Repeat(" ", w-sw)
	if right {
		return pad + s
	}
	return s + pad
}

// layoutColumns decides which columns show in width cells, and how wide
// each is: columns hide by drop order until the minimum widths fit, fixed
// columns then grow up to their max, and flexible ones share the rest by
// weight. It returns the indexes of the shown columns and their widths.
func layoutColumns(cols []column, width int) (shown, widths []int) {
	hidden := make([]bool, len(cols))
	need := func() int {
		n, w := 0, 0
		for i, c := range cols {
			if !hidden[i] {
				n++
				w += c.min
			}
		}
		return w + max(n-1, 0)
	}
	for need() > width {
		worst := -1
		for i, c := range cols {
			if !hidden[i] && c.drop > 0 && (worst < 0 || c.drop > cols[worst].drop) {
				worst = i
			}
		}
		if worst < 0 {
			break // nothing left to hide: the row gets cut at the edge
		}
		hidden[worst] = true
	}
	for i := range cols {
		if !hidden[i] {
			shown = append(shown, i)
			widths = append(widths, cols[i].min)
		}
	}
	spare := width - need()
	for j, i := range shown {
		if c := cols[i]; c.max > 0 && spare > 0 {
			grow := min(c.max-c.min, spare)
			widths[j] += grow
			spare -= grow
		}
	}
	weights := 0
	for _, i := range shown {
		if cols[i].max == 0 {
			weights += max(cols[i].weight, 1)
		}
	}
	if weights > 0 && spare > 0 {
		left := spare
		last := -1
		for j, i := range shown {
			if cols[i].max == 0 {
				grow := spare * max(cols[i].weight, 1) / weights
				widths[j] += grow
				left -= grow
				last = j
			}
		}
		widths[last] += left
	}
	return shown, widths
}

// searchText is a row's filter text: its fields, cleaned and lower-cased,
// separated so that a filter cannot match across two fields.
func searchText(fields ...string) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(strings.ToLower(clean(f)))
	}
	return b.String()
}
