package tui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"easgate/engine"
)

// TestViewGolden renders each view, page and dialog at 80×24 and 120×40
// and compares the screen, without colour, with
// testdata/TestViewGolden/*.golden. Run with -update to regenerate.
func TestViewGolden(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		opts Options
		held bool // the brake holds a plan
		// syncing holds the fake's Sync mid-run, so the screen shows progress.
		syncing bool
	}{
		{name: "overview", keys: []string{"1"}, held: true},
		{name: "overview_readonly", keys: []string{"1"}, opts: Options{ReadOnly: true}},
		{name: "unmerged", keys: []string{"2"}},
		{name: "unmerged_filter", keys: []string{"2", "/", "p", "i", "x", "e", "l"}},
		{name: "unmerged_selected_sorted", keys: []string{"2", "o", "space", "space"}},
		{name: "blocked", keys: []string{"3"}},
		{name: "devices", keys: []string{"4"}},
		{name: "runs", keys: []string{"5"}},
		{name: "runs_syncing", keys: []string{"5", "s"}, syncing: true},
		{name: "overview_syncing", keys: []string{"1", "s"}, syncing: true},
		{name: "plan_held", keys: []string{"6"}, held: true},
		{name: "plan_none", keys: []string{"6"}},
		{name: "journal", keys: []string{"7"}},
		{name: "log", keys: []string{"8"}},
		{name: "device_unmerged", keys: []string{"2", "enter"}},
		{name: "device_merged_statistics", keys: []string{"4", "enter", "i"}},
		{name: "device_journal_scrolled", keys: []string{"3", "j", "j", "enter", "G"}},
		{name: "run_detail", keys: []string{"5", "enter"}},
		{name: "help", keys: []string{"2", "?"}},
		{name: "help_readonly", keys: []string{"2", "?"}, opts: Options{ReadOnly: true}},
		{name: "dialog_block", keys: []string{"3", "j", "b"}},
		{name: "dialog_block_error", keys: []string{"3", "j", "b", "y", "e", "s", "t", "e", "r", "d", "a", "y", "enter", "enter", "right", "enter"}},
		{name: "dialog_wipe", keys: []string{"3", "W"}},
		{name: "dialog_remove", keys: []string{"3", "R"}},
		{name: "dialog_resend", keys: []string{"2", "m"}},
		{name: "dialog_link", keys: []string{"2", "l"}},
		{name: "dialog_approve", keys: []string{"6", "A"}, held: true},
		{name: "readonly_disabled_key", keys: []string{"3", "b"}, opts: Options{ReadOnly: true}},
	}
	sizes := []struct{ w, h int }{{80, 24}, {120, 40}}
	for _, tt := range tests {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s_%dx%d", tt.name, sz.w, sz.h), func(t *testing.T) {
				f := newFake()
				if tt.held {
					f.setHeld(heldPlan())
				}
				if tt.syncing {
					f.gate = make(chan struct{})
					t.Cleanup(func() { close(f.gate) })
				}
				h := newHarness(t, f, tt.opts, sz.w, sz.h).start()
				for _, k := range tt.keys {
					h.key(k)
					h.settle()
				}
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
