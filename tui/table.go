package tui

import (
	"runtime"
	"slices"
	"strings"
	"sync"
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

// gutter is the width of the cursor and selection marks in front of each
// row: ">" on the cursor row, "*" on a selected one, then a space.
const gutter = 3

// syncSortMax is the most rows a table sorts inside Update; more are sorted
// in a command so that a keypress never waits for a sort of 150,000 rows.
const syncSortMax = 20_000

// sortSpec is a table's order: by one column, or (col < 0) the order the
// rows came in.
type sortSpec struct {
	col  int
	desc bool
}

// natural is the order the rows came in.
var natural = sortSpec{col: -1}

// tableData is what a table shows. Rows are never modified once handed to
// a table, so commands may read them while the console goes on: several
// tables share one slice of device records, each showing a subset.
type tableData[T any] struct {
	rows   []T
	search []string // lower-cased, cleaned text of each row, for the filter
	ids    []string // each row's identity for selection; nil: no selection
	base   []int    // the rows this table shows, in their order; nil: all rows
	order  []int    // base sorted by spec; nil: base as it is
	spec   sortSpec // the order order was sorted in
}

// sortedMsg carries a table's new order, sorted in a command.
type sortedMsg struct {
	table any // the *table[T] that asked
	gen   int
	spec  sortSpec
	order []int
}

// table is a scrolling table that renders only the rows on screen, so its
// cost per frame does not depend on how many rows it holds. Rows are values
// of T; a view supplies the columns and how to render a row's cells.
type table[T any] struct {
	styles  *styles
	keys    *keyMap
	now     func() time.Time
	cols    []column
	cells   func(row *T, now time.Time, out []cell) // fills out, one cell per column
	same    func(a, b *T) bool                      // keeps the cursor on a row across reloads
	sorts   []func(a, b *T) int                     // per column; nil: the column does not sort
	noun    string                                  // "unmerged devices", for empty and count lines
	csvHead []string                                // export columns; nil: no export
	csvRow  func(row *T) []string

	data    tableData[T]
	spec    sortSpec // the order asked for; data.spec catches up
	sortGen int
	index   []int  // the rows the filter matches, in order; nil when there is no filter
	needle  string // the filter index was computed for
	// filterGen numbers filter changes; a scan in a command is taken only
	// if no change came after it. filtering is true while one is under way.
	filterGen int
	filtering bool
	loaded    bool
	loadErr   string // why the rows could not be read, while none are loaded
	filter    string
	editing   bool     // the filter input has the keyboard
	cursor    int      // position in the filtered rows
	offset    int      // first filtered row on screen
	sel       []uint64 // selected rows, a bit per row index; nil: none
	nsel      int
	width     int
	height    int // lines for the whole table: column titles, body, footer
	shown     []int
	widths    []int
	scratch   []cell
	lineBuff  strings.Builder
}

// newTable returns an empty table.
func newTable[T any](st *styles, keys *keyMap, now func() time.Time, noun string, cols []column,
	cells func(*T, time.Time, []cell), same func(a, b *T) bool) *table[T] {
	return &table[T]{styles: st, keys: keys, now: now, noun: noun, cols: cols, cells: cells, same: same,
		scratch: make([]cell, len(cols)), spec: natural, data: tableData[T]{spec: natural}}
}

// setRows replaces the rows with all of rows in their order.
func (t *table[T]) setRows(rows []T, search []string) tea.Cmd {
	return t.setData(tableData[T]{rows: rows, search: search, spec: natural})
}

// setData replaces what the table shows. The cursor stays on the same row
// when it is still there, and at the same position when it is not. When
// the data is not in the order the table is sorted by, it is sorted again.
func (t *table[T]) setData(d tableData[T]) tea.Cmd {
	// The cursor follows its row, except at the very top: there it stays,
	// so that a list whose newest entries come first shows them.
	var keep *T
	keepID := ""
	if r := t.current(); r != nil && t.cursor > 0 {
		v := *r
		keep = &v
		if t.data.ids != nil {
			keepID = t.data.ids[t.rowIndex(t.cursor)]
		}
	}
	screenRow := t.cursor - t.offset
	if d.spec != natural && d.order == nil {
		d.spec = natural
	}
	t.reselect(t.data.ids, d)
	t.data, t.loaded, t.loadErr = d, true, ""
	t.index, t.needle = nil, "" // the old matches index the old rows
	var cmd tea.Cmd
	if t.data.spec != t.spec {
		cmd = t.resort()
	}
	t.refilter()
	switch {
	case keepID != "" && d.ids != nil:
		t.seekID(keepID)
	case keep != nil:
		t.seek(keep)
	}
	t.offset = t.cursor - screenRow
	t.clamp()
	return cmd
}

// seek puts the cursor on the row that is the same as r, if it is shown.
func (t *table[T]) seek(r *T) {
	for i := range t.len() {
		if t.same(t.row(i), r) {
			t.cursor = i
			return
		}
	}
}

// seekID puts the cursor on the row with identity id, if it is shown:
// a string compare per row, cheap enough for 150,000 rows in a frame.
func (t *table[T]) seekID(id string) {
	for i := range t.len() {
		if t.data.ids[t.rowIndex(i)] == id {
			t.cursor = i
			return
		}
	}
}

// setError records that the rows could not be read. Rows already loaded
// stay on screen; the status line carries the error.
func (t *table[T]) setError(err error) { t.loadErr = clean(err.Error()) }

// ordered is the table's rows in display order before filtering, as row
// indexes; nil means every row in its order.
func (t *table[T]) ordered() []int {
	if t.data.order != nil {
		return t.data.order
	}
	return t.data.base
}

// total is the number of rows the table shows without a filter.
func (t *table[T]) total() int {
	if o := t.ordered(); o != nil {
		return len(o)
	}
	return len(t.data.rows)
}

// at is the row index at a position of the unfiltered order.
func (t *table[T]) at(pos int) int {
	if o := t.ordered(); o != nil {
		return o[pos]
	}
	return pos
}

// len is the number of rows the filter lets through.
func (t *table[T]) len() int {
	if t.index != nil {
		return len(t.index)
	}
	return t.total()
}

// rowIndex is the row index of the i-th row the filter lets through.
func (t *table[T]) rowIndex(i int) int {
	if t.index != nil {
		return t.index[i]
	}
	return t.at(i)
}

// row returns the i-th row the filter lets through.
func (t *table[T]) row(i int) *T { return &t.data.rows[t.rowIndex(i)] }

// current returns the row under the cursor, or nil.
func (t *table[T]) current() *T {
	if t.cursor < 0 || t.cursor >= t.len() {
		return nil
	}
	return t.row(t.cursor)
}

// syncScanMax is the most rows a keystroke's filter scans inside Update;
// a bigger table scans in a command, so typing never waits for it: the
// keystroke shows at once, the matches a few milliseconds later.
const syncScanMax = 20_000

// setFilter filters the rows by a case-insensitive substring.
func (t *table[T]) setFilter(f string) tea.Cmd {
	if f == t.filter {
		return nil
	}
	t.filter = f
	t.cursor, t.offset = 0, 0
	t.filterGen++
	needle := normalize(f)
	if needle == "" || t.total() <= syncScanMax {
		t.filtering = false
		t.refilter()
		return nil
	}
	rows, n := t.candidates(needle)
	search, gen := t.data.search, t.filterGen
	t.filtering = true
	return func() tea.Msg {
		return filteredMsg{table: t, gen: gen, needle: needle, index: scan(search, rows, n, needle)}
	}
}

// filteredMsg carries the matches of a filter scanned in a command.
type filteredMsg struct {
	table  any // the *table[T] that asked
	gen    int
	needle string
	index  []int
}

// handleFiltered takes matches scanned in a command, unless the filter has
// changed since.
func (t *table[T]) handleFiltered(msg filteredMsg) bool {
	if msg.table != any(t) {
		return false
	}
	if msg.gen == t.filterGen {
		t.index, t.needle, t.filtering = msg.index, msg.needle, false
		t.clamp()
	}
	return true
}

// normalize is a filter as it is matched: trimmed and lower-cased.
func normalize(f string) string { return strings.ToLower(strings.TrimSpace(f)) }

// candidates are the rows a needle must be looked for in: the last
// matches when it only narrows the last filter (a character typed), else
// every row the table shows. Neither slice is ever written to.
func (t *table[T]) candidates(needle string) ([]int, int) {
	if t.index != nil && t.needle != "" && strings.Contains(needle, t.needle) {
		return t.index, len(t.index)
	}
	return t.ordered(), t.total()
}

// refilter recomputes which rows match the filter, at once.
func (t *table[T]) refilter() {
	needle := normalize(t.filter)
	if needle == "" {
		t.index, t.needle = nil, ""
		return
	}
	rows, n := t.candidates(needle)
	t.index, t.needle = scan(t.data.search, rows, n, needle), needle
}

// parallelScanMin is the fewest rows a filter scans on several cores.
const parallelScanMin = 20_000

// scan returns the rows (of the n that rows names, in its order; nil
// names 0..n-1) whose search text holds needle, in a new slice. A big scan
// is split over the cores.
func scan(search []string, rows []int, n int, needle string) []int {
	buf := make([]int, n)
	at := func(i int) int {
		if rows != nil {
			return rows[i]
		}
		return i
	}
	// part writes the matches among [lo, hi) from buf[lo] on.
	part := func(lo, hi int) int {
		k := lo
		for i := lo; i < hi; i++ {
			if r := at(i); strings.Contains(search[r], needle) {
				buf[k] = r
				k++
			}
		}
		return k - lo
	}
	workers := runtime.GOMAXPROCS(0)
	if n < parallelScanMin || workers < 2 {
		return buf[:part(0, n)]
	}
	chunk := (n + workers - 1) / workers
	found := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		if lo >= hi {
			break
		}
		wg.Go(func() { found[w] = part(lo, hi) })
	}
	wg.Wait()
	k := 0
	for w, f := range found {
		k += copy(buf[k:], buf[w*chunk:w*chunk+f])
	}
	return buf[:k]
}

// sortable reports whether any column sorts.
func (t *table[T]) sortable() bool {
	for _, f := range t.sorts {
		if f != nil {
			return true
		}
	}
	return false
}

// nextSort moves the sort to the next sortable column after the current
// one, and from the last back to the natural order.
func (t *table[T]) nextSort() tea.Cmd {
	if !t.sortable() {
		return nil
	}
	spec := natural
	for c := t.spec.col + 1; c < len(t.cols); c++ {
		if c < len(t.sorts) && t.sorts[c] != nil {
			spec = sortSpec{col: c}
			break
		}
	}
	t.spec = spec
	return t.resort()
}

// reverseSort flips the sort direction (a natural order becomes sorted by
// the first sortable column, descending).
func (t *table[T]) reverseSort() tea.Cmd {
	if !t.sortable() {
		return nil
	}
	if t.spec.col < 0 {
		t.nextSort()
		t.spec.desc = true
		return t.resort()
	}
	t.spec.desc = !t.spec.desc
	return t.resort()
}

// resort brings the data's order to the table's sort: at once for a small
// table, in a command for a big one (the old order shows meanwhile).
func (t *table[T]) resort() tea.Cmd {
	t.sortGen++
	if t.spec.col < 0 {
		t.applyOrder(nil, natural)
		return nil
	}
	rows, base, spec, gen := t.data.rows, t.data.base, t.spec, t.sortGen
	cmp := t.sorts[spec.col]
	n := len(rows)
	if base != nil {
		n = len(base)
	}
	if n <= syncSortMax {
		t.applyOrder(sortOrder(rows, base, cmp, spec.desc), spec)
		return nil
	}
	return func() tea.Msg {
		return sortedMsg{table: t, gen: gen, spec: spec, order: sortOrder(rows, base, cmp, spec.desc)}
	}
}

// handleSorted takes an order sorted in a command, unless the table has
// moved on since it was asked for.
func (t *table[T]) handleSorted(msg sortedMsg) bool {
	if msg.table != any(t) {
		return false
	}
	if msg.gen == t.sortGen {
		t.applyOrder(msg.order, msg.spec)
	}
	return true
}

// applyOrder shows the rows in a new order, keeping the cursor on its row.
func (t *table[T]) applyOrder(order []int, spec sortSpec) {
	var keep *T
	if r := t.current(); r != nil {
		v := *r
		keep = &v
	}
	t.data.order, t.data.spec = order, spec
	t.index, t.needle = nil, ""
	t.refilter()
	t.cursor = 0
	if keep != nil {
		t.seek(keep)
	}
	t.clamp()
}

// sortOrder sorts the rows base names (nil: all of them) with cmp, stably,
// so equal rows keep the order they came in.
func sortOrder[T any](rows []T, base []int, cmp func(a, b *T) int, desc bool) []int {
	var idx []int
	if base != nil {
		idx = slices.Clone(base)
	} else {
		idx = make([]int, len(rows))
		for i := range idx {
			idx[i] = i
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		c := cmp(&rows[a], &rows[b])
		if desc {
			return -c
		}
		return c
	})
	return idx
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

// escape clears the filter, else the selection; it reports whether there
// was either.
func (t *table[T]) escape() bool {
	switch {
	case t.filter != "":
		t.setFilter("") // an empty filter applies at once
		return true
	case t.nsel > 0:
		t.sel, t.nsel = nil, 0
		return true
	}
	return false
}

// Update moves the cursor, pages, sorts, selects and edits the filter.
func (t *table[T]) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case sortedMsg:
		t.handleSorted(msg)
		return nil
	case filteredMsg:
		t.handleFiltered(msg)
		return nil
	case tea.KeyPressMsg:
		return t.key(msg)
	}
	return nil
}

// key handles a key press.
func (t *table[T]) key(k tea.KeyPressMsg) tea.Cmd {
	if t.editing {
		return t.edit(k)
	}
	var cmd tea.Cmd
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
	case key.Matches(k, t.keys.sortNext):
		cmd = t.nextSort()
	case key.Matches(k, t.keys.sortReverse):
		cmd = t.reverseSort()
	case key.Matches(k, t.keys.selectRow):
		t.toggle(t.cursor)
		t.cursor++
	case key.Matches(k, t.keys.selectAll):
		t.toggleAll()
	}
	t.clamp()
	return cmd
}

// canSelect reports whether the rows can be selected.
func (t *table[T]) canSelect() bool { return t.data.ids != nil }

// toggle selects or unselects the i-th filtered row.
func (t *table[T]) toggle(i int) {
	if !t.canSelect() || i < 0 || i >= t.len() {
		return
	}
	t.mark(t.rowIndex(i), !t.isSelected(t.rowIndex(i)))
}

// mark selects or unselects the row at index r.
func (t *table[T]) mark(r int, on bool) {
	if t.sel == nil {
		t.sel = make([]uint64, (len(t.data.rows)+63)/64)
	}
	w, b := r/64, uint64(1)<<(r%64)
	switch was := t.sel[w]&b != 0; {
	case on && !was:
		t.sel[w] |= b
		t.nsel++
	case !on && was:
		t.sel[w] &^= b
		t.nsel--
	}
}

// toggleAll selects every row the filter lets through, or unselects them
// all when they all are selected already.
func (t *table[T]) toggleAll() {
	if !t.canSelect() {
		return
	}
	n := t.len()
	all := true
	for i := range n {
		if !t.isSelected(t.rowIndex(i)) {
			all = false
			break
		}
	}
	for i := range n {
		t.mark(t.rowIndex(i), !all)
	}
}

// isSelected reports whether the row at index r is selected.
func (t *table[T]) isSelected(r int) bool {
	return t.nsel > 0 && t.sel[r/64]&(uint64(1)<<(r%64)) != 0
}

// reselect carries the selection over to new rows by identity: a device
// selected before a reload stays selected if it is still there.
func (t *table[T]) reselect(oldIDs []string, d tableData[T]) {
	if t.nsel == 0 {
		t.sel = nil
		return
	}
	keep := make(map[string]struct{}, t.nsel)
	for r := range oldIDs {
		if t.isSelected(r) {
			keep[oldIDs[r]] = struct{}{}
		}
	}
	t.sel, t.nsel = nil, 0
	if d.ids == nil {
		return
	}
	for r, id := range d.ids {
		if _, ok := keep[id]; ok {
			t.mark(r, true)
		}
	}
}

// selectedRows returns the selected rows, in the table's order.
func (t *table[T]) selectedRows() []T {
	if t.nsel == 0 {
		return nil
	}
	var out []T
	for pos := range t.total() {
		if r := t.at(pos); t.isSelected(r) {
			out = append(out, t.data.rows[r])
		}
	}
	return out
}

// edit handles a key while the filter input is open. The filter applies as
// it is typed; enter keeps it, esc clears it.
func (t *table[T]) edit(k tea.KeyPressMsg) tea.Cmd {
	var cmd tea.Cmd
	switch {
	case key.Matches(k, t.keys.acceptInput):
		t.editing = false
	case key.Matches(k, t.keys.clearFilter):
		t.editing = false
		cmd = t.setFilter("")
	case key.Matches(k, t.keys.deleteChar):
		f := t.filter
		if _, size := utf8.DecodeLastRuneInString(f); size > 0 {
			cmd = t.setFilter(f[:len(f)-size])
		}
	case key.Matches(k, t.keys.clearInput):
		cmd = t.setFilter("")
	case k.Text != "" && !k.Mod.Contains(tea.ModCtrl) && !k.Mod.Contains(tea.ModAlt):
		if utf8.RuneCountInString(t.filter) < maxFieldRunes {
			cmd = t.setFilter(t.filter + clean(k.Text))
		}
	}
	t.clamp()
	return cmd
}

// click moves the cursor to the row at line y of the table (0: the titles).
func (t *table[T]) click(y int) {
	if y >= 1 && y <= t.body() {
		t.cursor = t.offset + y - 1
		t.clamp()
	}
}

// scroll moves the cursor by n rows (the mouse wheel).
func (t *table[T]) scroll(n int) {
	t.cursor += n
	t.clamp()
}

// helpKeys returns the table's bindings for the help bar and full help.
func (t *table[T]) helpKeys() (short []key.Binding, groups []helpGroup) {
	k := t.keys
	if t.editing {
		return []key.Binding{k.acceptInput, k.clearFilter, k.deleteChar},
			[]helpGroup{{title: "Filter", keys: []key.Binding{k.acceptInput, k.clearFilter, k.deleteChar, k.clearInput}}}
	}
	move := helpGroup{title: "Move", keys: []key.Binding{k.up, k.down, k.pageUp, k.pageDown, k.top, k.bottom}}
	list := helpGroup{title: "List", keys: []key.Binding{k.filter, k.clearFilter}}
	if t.sortable() {
		list.keys = append(list.keys, k.sortNext, k.sortReverse)
	}
	if t.canSelect() {
		list.keys = append(list.keys, k.selectRow, k.selectAll)
	}
	if t.csvHead != nil {
		list.keys = append(list.keys, k.export)
	}
	return []key.Binding{k.up, k.down, k.filter}, []helpGroup{move, list}
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
			ri := t.rowIndex(r)
			b.WriteString(t.rowLine(&t.data.rows[ri], r == t.cursor, t.isSelected(ri), now))
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

// titleLine renders the column titles; the sort column carries ▲ or ▼.
func (t *table[T]) titleLine() string {
	line := &t.lineBuff
	line.Reset()
	line.WriteString(strings.Repeat(" ", min(gutter, t.width)))
	for j, c := range t.shown {
		if j > 0 {
			line.WriteByte(' ')
		}
		title := t.cols[c].title
		if c == t.data.spec.col {
			// The arrow stays when the title is cut.
			arrow := "▲"
			if t.data.spec.desc {
				arrow = "▼"
			}
			w := t.widths[j]
			if ansi.StringWidth(title)+1 > w {
				title = ansi.Truncate(title, max(w-2, 0), "…")
			}
			title += arrow
		}
		line.WriteString(fit(title, t.widths[j], t.cols[c].right))
	}
	return t.styles.tableHeader.Render(ansi.Truncate(line.String(), t.width, ""))
}

// rowLine renders one row; the cursor row is marked and highlighted, a
// selected row carries a *.
func (t *table[T]) rowLine(r *T, cursor, selected bool, now time.Time) string {
	for i := range t.scratch {
		t.scratch[i] = cell{}
	}
	t.cells(r, now, t.scratch)
	line := &t.lineBuff
	line.Reset()
	if cursor {
		line.WriteByte('>')
	} else {
		line.WriteByte(' ')
	}
	if selected {
		line.WriteString("* ")
	} else {
		line.WriteString("  ")
	}
	for j, c := range t.shown {
		if j > 0 {
			line.WriteByte(' ')
		}
		text := fit(clean(t.scratch[c].text), t.widths[j], t.cols[c].right)
		if tn := t.scratch[c].tone; tn != toneNormal && !cursor {
			text = t.styles.tone(tn).Render(text)
		}
		line.WriteString(text)
	}
	out := line.String()
	if cursor {
		w := ansi.StringWidth(out)
		if w < t.width {
			out += strings.Repeat(" ", t.width-w)
		}
		return t.styles.selected.Render(ansi.Truncate(out, t.width, ""))
	}
	return ansi.Truncate(out, t.width, "")
}

// footerLine renders the filter (or its input) and the selection on the
// left and the cursor position on the right.
func (t *table[T]) footerLine() string {
	var left string
	switch {
	case t.editing:
		left = "filter: " + t.filter + "▏"
	case t.filter != "":
		left = "filter: " + t.filter + "  (esc clears)"
	}
	if n := t.nsel; n > 0 {
		if left != "" {
			left += " · "
		}
		left += count(n) + " selected"
	}
	right := ""
	if t.loaded {
		switch n := t.len(); {
		case t.filtering:
			right = "filtering " + count(t.total()) + " " + t.noun + "…"
		case n == 0:
			right = "0 " + t.noun
		case t.index != nil:
			right = count(t.cursor+1) + " of " + count(n) + " matching (" + count(t.total()) + " in all)"
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

// exportRows returns the rows an export writes: those the filter lets
// through, in the table's order. The index slice is copied: the filter
// rewrites its own in place.
func (t *table[T]) exportRows() (rows []T, idx []int) {
	idx = make([]int, t.len())
	for i := range idx {
		idx[i] = t.rowIndex(i)
	}
	return t.data.rows, idx
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

// cut cuts a styled line to width cells.
func cut(s string, width int) string { return ansi.Truncate(s, width, "…") }
