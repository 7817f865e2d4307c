package tui

import (
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
			if r := tbl.selected(); r != nil {
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
				if k == "ctrl+u" {
					tbl.Update(keyPressCtrl('u'))
				} else {
					tbl.Update(keyPress(k))
				}
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

func searchTexts(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = searchText(w)
	}
	return out
}
