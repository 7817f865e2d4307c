package tui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"easgate/engine"
)

// TestViewGolden renders each view at 80×24 and 120×40 and compares the
// screen, without colour, with testdata/TestViewGolden/*.golden. Run with
// -update to regenerate.
func TestViewGolden(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		opts Options
		// syncing holds the fake's Sync mid-run, so the screen shows progress.
		syncing bool
	}{
		{name: "unmerged", keys: []string{"1"}},
		{name: "blocked", keys: []string{"2"}},
		{name: "runs", keys: []string{"3"}},
		{name: "unmerged_readonly_help", keys: []string{"?"}, opts: Options{ReadOnly: true}},
		{name: "unmerged_filter", keys: []string{"/", "p", "i", "x", "e", "l"}},
		{name: "runs_syncing", keys: []string{"3", "s"}, syncing: true},
	}
	sizes := []struct{ w, h int }{{80, 24}, {120, 40}}
	for _, tt := range tests {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s_%dx%d", tt.name, sz.w, sz.h), func(t *testing.T) {
				f := newFake()
				if tt.syncing {
					f.gate = make(chan struct{})
					t.Cleanup(func() { close(f.gate) })
				}
				h := newHarness(t, f, tt.opts, sz.w, sz.h).start()
				h.key(tt.keys...)
				if tt.syncing {
					h.until("progress", inPhase(engine.PhaseApply))
				}
				screen := h.screen()
				checkScreen(t, screen, sz.w, sz.h)
				golden.RequireEqual(t, screen)
			})
		}
	}
}

// checkScreen asserts the screen fills the terminal without overflowing it
// and carries no control characters but newlines.
func checkScreen(t *testing.T, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) != h {
		t.Errorf("screen has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := displayWidth(l); n > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, n, w, l)
		}
		for _, r := range l {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				t.Errorf("line %d holds control character %U: %q", i+1, r, l)
			}
		}
	}
}
