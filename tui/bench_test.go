package tui

import (
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

// benchRows is the scale the console must stay fast at.
const benchRows = 150_000

// loadedBench returns a console at 120×40 whose Unmerged view holds n
// devices.
func loadedBench(b testing.TB, n int) *harness {
	b.Helper()
	f := newFake()
	f.devices = manyDevices(n)
	for i := range f.devices {
		f.devices[i].MDMID = "" // every one unmerged
	}
	f.status.Counts = countsOf(f.devices)
	h := newHarness(b, f, Options{}, 120, 40).start()
	if got, _ := h.m.views[viewUnmerged].Count(); got != n {
		b.Fatalf("unmerged view holds %d rows, want %d", got, n)
	}
	return h
}

// BenchmarkUnmergedView renders a frame of the Unmerged view holding
// 150,000 devices.
func BenchmarkUnmergedView(b *testing.B) {
	h := loadedBench(b, benchRows)
	h.key("G") // the far end of the table costs the same as its start
	b.ReportAllocs()
	for b.Loop() {
		_ = h.m.View()
	}
}

// BenchmarkUnmergedFilterView is one frame of typing a filter over 150,000
// rows: a keystroke and the render. Keystrokes alternate between deleting
// the filter's last character (the filter widens: every row is scanned) and
// typing it again (it narrows: only the last matches are scanned).
func BenchmarkUnmergedFilterView(b *testing.B) {
	tests := []struct {
		name   string
		filter string
	}{
		{name: "one match", filter: "user012345@"},
		{name: "a third", filter: "pixel"},
		{name: "all", filter: "contoso"},
		{name: "none", filter: "zzz"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			h := loadedBench(b, benchRows)
			h.key("/")
			h.key(splitKeys(tt.filter)...)
			keys := []tea.KeyPressMsg{keyPress("backspace"), keyPress(tt.filter[len(tt.filter)-1:])}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.m.Update(keys[i%2])
				_ = h.m.View()
				i++
			}
		})
	}
}

// BenchmarkUnmergedWidenFilterView is the worst frame of typing a filter:
// a backspace widens it, so every one of 150,000 rows is scanned. Retyping
// the character (a narrowing scan) happens outside the timer.
func BenchmarkUnmergedWidenFilterView(b *testing.B) {
	h := loadedBench(b, benchRows)
	h.key("/", "c", "o", "n", "t", "o", "s", "o")
	b.ReportAllocs()
	for b.Loop() {
		h.m.Update(keyPress("backspace"))
		_ = h.m.View()
		b.StopTimer()
		h.m.Update(keyPress("o"))
		b.StartTimer()
	}
}

// BenchmarkUnmergedScrollView pages down and renders the frame.
func BenchmarkUnmergedScrollView(b *testing.B) {
	h := loadedBench(b, benchRows)
	b.ReportAllocs()
	for b.Loop() {
		h.send(keyPress("pgdown"))
		_ = h.m.View()
	}
}

// BenchmarkDevicesLoad is a whole reload of 150,000 unmerged devices: the
// command's work (reading, filter texts) and the Update that takes them.
func BenchmarkDevicesLoad(b *testing.B) {
	h := loadedBench(b, benchRows)
	h.key("j", "j") // the cursor follows its row through the reload
	v := h.m.views[viewUnmerged].(*deviceView)
	b.Run("command", func(b *testing.B) {
		for b.Loop() {
			_ = v.fetch()()
		}
	})
	msg := v.fetch()().(devicesMsg)
	b.Run("update", func(b *testing.B) {
		for b.Loop() {
			v.load.inFlight = true
			h.m.Update(msg)
		}
	})
}

func splitKeys(s string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

// TestRenderCostIndependentOfRows guards the visible-window rendering: a
// frame of 150,000 rows costs about what a frame of 150 does, and far less
// than a 60 Hz frame's 16 ms.
func TestRenderCostIndependentOfRows(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("large scale timing")
	}
	perFrame := func(n int) time.Duration {
		h := loadedBench(t, n)
		best := time.Duration(1<<63 - 1)
		for range 3 {
			start := time.Now()
			for range 100 {
				_ = h.m.View()
			}
			best = min(best, time.Since(start)/100)
		}
		return best
	}
	small, large := perFrame(150), perFrame(benchRows)
	t.Logf("one frame: 150 rows %v, %d rows %v", small, benchRows, large)
	if large > 3*small+time.Millisecond {
		t.Errorf("a frame of %d rows takes %v, of 150 rows %v: rendering depends on the row count", benchRows, large, small)
	}
}
