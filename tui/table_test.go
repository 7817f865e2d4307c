package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// wordTable is a one-column table of words.
func wordTable(words ...string) *table[string] {
	cols := []column{{title: "Word", min: 10, weight: 1}}
	cells := func(w *string, _ time.Time, out []cell) { out[0] = cell{text: *w} }
	same := func(a, b *string) bool { return *a == *b }
	t := newTable(newStyles(defaultTheme()), defaultKeys(false), clock, "words", cols, cells, same)
	t.SetSize(40, 7) // 5 rows on screen
	t.setRows(words, searchTexts(words))
	return t
}

func TestCursorAcrossReload(t *testing.T) {
	tests := []struct {
		name   string
		before []string
		moves  int // j presses before the reload
		after  []string
		want   string // the row under the cursor after the reload
	}{
		{name: "follows its row down", before: []string{"a", "b", "c"}, moves: 1,
			after: []string{"0", "a", "b", "c"}, want: "b"},
		{name: "follows its row up", before: []string{"a", "b", "c"}, moves: 2,
			after: []string{"b", "c"}, want: "c"},
		{name: "stays at the top for new rows", before: []string{"b", "c"}, moves: 0,
			after: []string{"a", "b", "c"}, want: "a"},
		{name: "a row that went away keeps the position", before: []string{"a", "b", "c", "d"}, moves: 2,
			after: []string{"a", "b", "d"}, want: "d"},
		{name: "the last row went away", before: []string{"a", "b", "c"}, moves: 2,
			after: []string{"a", "b"}, want: "b"},
		{name: "everything went away", before: []string{"a", "b"}, moves: 1,
			after: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := wordTable(tt.before...)
			for range tt.moves {
				tbl.Update(keyPress("j"))
			}
			tbl.setRows(tt.after, searchTexts(tt.after))
			got := ""
			if r := tbl.current(); r != nil {
				got = *r
			}
			if got != tt.want {
				t.Errorf("cursor on %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTableRendersOnlyTheWindow(t *testing.T) {
	words := make([]string, 1000)
	for i := range words {
		words[i] = strings.Repeat("x", i%7) + "w"
	}
	tbl := wordTable(words...)
	tbl.Update(keyPress("G"))
	lines := strings.Split(tbl.View(), "\n")
	if len(lines) != 7 {
		t.Fatalf("table view has %d lines, want 7 (titles, 5 rows, footer)", len(lines))
	}
	if !strings.Contains(lines[5], "> ") || !strings.Contains(lines[6], "1,000 of 1,000") {
		t.Errorf("last row not selected at G:\n%s", tbl.View())
	}
}

func TestTableLoadError(t *testing.T) {
	cols := []column{{title: "Word", min: 10, weight: 1}}
	cells := func(w *string, _ time.Time, out []cell) { out[0] = cell{text: *w} }
	tbl := newTable(newStyles(defaultTheme()), defaultKeys(false), clock, "words", cols, cells,
		func(a, b *string) bool { return *a == *b })
	tbl.SetSize(60, 5)
	if !strings.Contains(tbl.View(), "loading words…") {
		t.Errorf("an unloaded table does not say it is loading:\n%s", tbl.View())
	}
	tbl.setError(errTest("socket closed"))
	if !strings.Contains(tbl.View(), "could not read words: socket closed") {
		t.Errorf("a failed load does not say so:\n%s", tbl.View())
	}
	tbl.setRows([]string{"a"}, []string{"a"})
	if strings.Contains(tbl.View(), "could not read") {
		t.Errorf("a later load does not clear the error:\n%s", tbl.View())
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestFilterMatchesBruteForce(t *testing.T) {
	words := []string{"alpha", "alphabet", "beta", "Alphonse", "gamma", "delta", "alps", "bet"}
	tests := []struct {
		name string
		keys []string
	}{
		{name: "narrowing", keys: []string{"/", "a", "l", "p", "h"}},
		{name: "narrow then widen", keys: []string{"/", "a", "l", "p", "h", "backspace", "backspace", "s"}},
		{name: "to nothing and back", keys: []string{"/", "z", "backspace", "b", "e", "t"}},
		{name: "middle of a word", keys: []string{"/", "l", "t", "backspace", "p", "h", "a"}},
		{name: "clear and retype", keys: []string{"/", "a", "ctrl+u", "e", "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := wordTable(words...)
			for _, k := range tt.keys {
				tbl.Update(keyPress(k))
				var want []string
				for _, w := range words {
					if strings.Contains(strings.ToLower(w), strings.ToLower(tbl.filter)) {
						want = append(want, w)
					}
				}
				var got []string
				for i := range tbl.len() {
					got = append(got, *tbl.row(i))
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("after %q (filter %q): rows %v, want %v", k, tbl.filter, got, want)
				}
			}
		})
	}
}

func TestFilterOverSubsetAndSort(t *testing.T) {
	// A table showing a subset of shared rows, sorted, then filtered: the
	// rows it shows are exactly the subset's matches in sorted order.
	words := []string{"delta", "alpha", "echo", "bravo", "alps", "charlie", "alpine", "beta"}
	base := []int{0, 1, 3, 4, 6, 7} // not echo, not charlie
	tests := []struct {
		name string
		keys []string
		want string
	}{
		{name: "subset", keys: nil, want: "delta,alpha,bravo,alps,alpine,beta"},
		{name: "subset sorted", keys: []string{"o"}, want: "alpha,alpine,alps,beta,bravo,delta"},
		{name: "sorted descending", keys: []string{"O"}, want: "delta,bravo,beta,alps,alpine,alpha"},
		{name: "sorted and filtered", keys: []string{"o", "/", "a", "l"}, want: "alpha,alpine,alps"},
		{name: "filtered then sorted", keys: []string{"/", "a", "l", "p", "enter", "O"}, want: "alps,alpine,alpha"},
		{name: "filter never leaves the subset", keys: []string{"/", "e", "c", "h"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := wordTable()
			tbl.sorts = []func(a, b *string) int{func(a, b *string) int { return strings.Compare(*a, *b) }}
			tbl.setData(tableData[string]{rows: words, search: searchTexts(words), base: base, spec: natural})
			for _, k := range tt.keys {
				tbl.Update(keyPress(k))
			}
			var got []string
			for i := range tbl.len() {
				got = append(got, *tbl.row(i))
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("rows %v, want %s", got, tt.want)
			}
			if tbl.total() != len(base) {
				t.Errorf("total = %d, want the subset's %d", tbl.total(), len(base))
			}
		})
	}
}

func searchTexts(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = searchText(w)
	}
	return out
}

func TestScanMatchesBruteForce(t *testing.T) {
	// Big enough to be split over the cores.
	n := parallelScanMin*2 + 7
	search := make([]string, n)
	for i := range search {
		search[i] = fmt.Sprintf("user%06d\tmodel%d", i, i%7)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = (i * 7919) % n // a permutation: n is not a multiple of 7919
	}
	tests := []struct {
		name   string
		rows   []int
		needle string
	}{
		{name: "natural order, some", rows: nil, needle: "model3"},
		{name: "natural order, one", rows: nil, needle: "user012345"},
		{name: "natural order, none", rows: nil, needle: "zzz"},
		{name: "natural order, all", rows: nil, needle: "user"},
		{name: "permuted, some", rows: order, needle: "model5"},
		{name: "permuted, all", rows: order, needle: "\tmodel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []int
			for i := range n {
				r := i
				if tt.rows != nil {
					r = tt.rows[i]
				}
				if strings.Contains(search[r], tt.needle) {
					want = append(want, r)
				}
			}
			got := scan(search, tt.rows, n, tt.needle)
			if !slices.Equal(got, want) {
				t.Errorf("scan found %d rows, want %d (first differences matter: order is kept)", len(got), len(want))
			}
			// Over the last matches, as a narrowing filter does.
			if got := scan(search, want, len(want), tt.needle); !slices.Equal(got, want) {
				t.Errorf("scanning the matches again changed them")
			}
		})
	}
}

func TestSelectionSurvivesReload(t *testing.T) {
	words := []string{"a", "b", "c", "d"}
	tbl := wordTable()
	tbl.setData(tableData[string]{rows: words, search: searchTexts(words), ids: words, spec: natural})
	tbl.Update(keyPress("j"))
	tbl.Update(keyPress("space")) // b
	tbl.Update(keyPress("space")) // c
	after := []string{"0", "b", "d", "c"}
	tbl.setData(tableData[string]{rows: after, search: searchTexts(after), ids: after, spec: natural})
	if got := tbl.selectedRows(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("selected after the reload = %v, want b and c", got)
	}
	if !strings.Contains(tbl.View(), "2 selected") {
		t.Errorf("footer does not count the selection:\n%s", tbl.View())
	}
	if !tbl.escape() || tbl.selectedRows() != nil {
		t.Error("esc does not clear the selection")
	}
}
