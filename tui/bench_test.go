package tui

import (
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// benchRows is the scale the console must stay fast at.
const benchRows = 150_000

// loadedBench returns a console at 120×40 showing the Unmerged view, whose
// device views share n devices, every one of them unmerged and blocked.
func loadedBench(b testing.TB, n int) *harness {
	b.Helper()
	f := newFake()
	f.devices = manyDevices(n)
	f.status.Counts = countsOf(f.devices)
	h := newHarness(b, f, Options{}, 120, 40).start()
	h.key("2")
	if got, _ := h.m.unmerged.Count(); got != n {
		b.Fatalf("unmerged view holds %d rows, want %d", got, n)
	}
	return h
}

// BenchmarkView renders one frame of each device view holding 150,000
// devices, with the cursor at the far end.
func BenchmarkView(b *testing.B) {
	for _, tab := range []string{"2", "3", "4"} {
		b.Run(tabTitles[tab[0]-'1'], func(b *testing.B) {
			h := loadedBench(b, benchRows)
			h.key(tab, "G")
			b.ReportAllocs()
			for b.Loop() {
				_ = h.m.View()
			}
		})
	}
}

// BenchmarkKeyFrame is a keypress that moves the cursor and the frame it
// draws, at 150,000 rows: what the 16 ms budget is about.
func BenchmarkKeyFrame(b *testing.B) {
	h := loadedBench(b, benchRows)
	keys := []tea.KeyPressMsg{keyPress("j"), keyPress("k")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.m.Update(keys[i%2])
		_ = h.m.View()
		i++
	}
}

// filterCases are filters over the 150,000 benchmark devices.
var filterCases = []struct {
	name   string
	filter string
}{
	{name: "one match", filter: "user012345@"},
	{name: "a third", filter: "pixel"},
	{name: "all", filter: "contoso"},
	{name: "none", filter: "zzz"},
}

// BenchmarkFilterKeyFrame is one frame of typing a filter over 150,000
// rows: a keystroke (its scan goes to a command) and the render.
// Keystrokes alternate between deleting the filter's last character and
// typing it again.
func BenchmarkFilterKeyFrame(b *testing.B) {
	for _, tt := range filterCases {
		b.Run(tt.name, func(b *testing.B) {
			h := loadedBench(b, benchRows)
			h.key("/")
			h.key(typeText(tt.filter)...)
			h.settle()
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

// BenchmarkFilterScan is a filter command's work over 150,000 devices:
// "widen" scans every row (a backspace, or the first character), "narrow"
// only the matches of the filter one character shorter.
func BenchmarkFilterScan(b *testing.B) {
	msg := buildDevices(manyDevices(benchRows), nil)
	for _, tt := range filterCases {
		shorter := scan(msg.search, nil, len(msg.search), tt.filter[:len(tt.filter)-1])
		b.Run(tt.name+"/widen", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = scan(msg.search, nil, len(msg.search), tt.filter)
			}
		})
		b.Run(tt.name+"/narrow", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = scan(msg.search, shorter, len(shorter), tt.filter)
			}
		})
	}
}

// BenchmarkScrollKeyFrame pages down and renders the frame.
func BenchmarkScrollKeyFrame(b *testing.B) {
	h := loadedBench(b, benchRows)
	b.ReportAllocs()
	for b.Loop() {
		h.m.Update(keyPress("pgdown"))
		_ = h.m.View()
	}
}

// BenchmarkSortKeyFrame is the keypress that sorts 150,000 rows, which
// returns at once (the sort runs in a command), and its frame.
func BenchmarkSortKeyFrame(b *testing.B) {
	h := loadedBench(b, benchRows)
	b.ReportAllocs()
	for b.Loop() {
		h.m.Update(keyPress("O"))
		_ = h.m.View()
	}
}

// BenchmarkSortCommand is the command's sort of 150,000 rows by user, off
// the UI goroutine.
func BenchmarkSortCommand(b *testing.B) {
	rows := manyDevices(benchRows)
	b.ReportAllocs()
	for b.Loop() {
		_ = sortOrder(rows, nil, byUser, true)
	}
}

// BenchmarkSelectAllKeyFrame selects (and unselects) 150,000 rows with *.
func BenchmarkSelectAllKeyFrame(b *testing.B) {
	h := loadedBench(b, benchRows)
	b.ReportAllocs()
	for b.Loop() {
		h.m.Update(keyPress("*"))
		_ = h.m.View()
	}
}

// BenchmarkEventBurstFrame is the frame of a burst of progress events
// during a large sync: a batch of maxBatch events handled as one message.
func BenchmarkEventBurstFrame(b *testing.B) {
	h := loadedBench(b, benchRows)
	run := engine.Run{ID: "run-big", Kind: engine.RunFull, Status: engine.StatusRunning, Started: at(-time.Minute)}
	evs := make([]engine.Event, maxBatch)
	for i := range evs {
		evs[i] = engine.Event{Kind: engine.EventProgress, Time: at(-time.Second),
			Progress: &engine.Progress{Run: run, Phase: engine.PhaseApply, Done: i, Total: len(evs)}}
	}
	msg := eventsMsg{evs: evs}
	b.ReportAllocs()
	for b.Loop() {
		h.m.Update(msg)
		_ = h.m.View()
	}
}

// BenchmarkDevicesLoad is a whole reload of 150,000 devices: the command's
// work (filter texts, each view's subset) and the Update that takes them.
func BenchmarkDevicesLoad(b *testing.B) {
	h := loadedBench(b, benchRows)
	h.key("G") // the cursor follows its row through the reload: the worst case is the last row
	rows := manyDevices(benchRows)
	queries := []deviceQuery{h.m.unmerged.query(), h.m.blocked.query(), h.m.devices.query()}
	b.Run("command", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = buildDevices(rows, queries)
		}
	})
	msg := buildDevices(rows, queries)
	b.Run("update", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.m.devLoad.inFlight = true
			h.m.Update(msg)
		}
	})
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
