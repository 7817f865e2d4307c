package tui

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"easgate/engine"
)

func TestViewSwitching(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want tabID
	}{
		{name: "starts on the overview", keys: nil, want: tabOverview},
		{name: "tab", keys: []string{"tab"}, want: tabUnmerged},
		{name: "tab twice", keys: []string{"tab", "tab"}, want: tabBlocked},
		{name: "shift+tab wraps back", keys: []string{"shift+tab"}, want: tabLog},
		{name: "tab wraps", keys: repeat("tab", int(tabCount)), want: tabOverview},
		{name: "1", keys: []string{"3", "1"}, want: tabOverview},
		{name: "2", keys: []string{"2"}, want: tabUnmerged},
		{name: "3", keys: []string{"3"}, want: tabBlocked},
		{name: "4", keys: []string{"4"}, want: tabDevices},
		{name: "5", keys: []string{"5"}, want: tabRuns},
		{name: "6", keys: []string{"6"}, want: tabPlan},
		{name: "7", keys: []string{"7"}, want: tabJournal},
		{name: "8", keys: []string{"8"}, want: tabLog},
		{name: "9 does nothing", keys: []string{"2", "9"}, want: tabUnmerged},
		{name: "digits type into an open filter", keys: []string{"2", "/", "3"}, want: tabUnmerged},
		{name: "enter closes the filter", keys: []string{"2", "/", "x", "enter", "5"}, want: tabRuns},
		{name: "a number leaves a detail page", keys: []string{"2", "enter", "5"}, want: tabRuns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 80, 24).start()
			h.key(tt.keys...)
			if h.m.active != tt.want {
				t.Errorf("active view = %s, want %s", tabTitles[h.m.active], tabTitles[tt.want])
			}
			if len(h.m.stack) != 0 && tt.name == "a number leaves a detail page" {
				t.Errorf("a detail page is still open")
			}
		})
	}
}

// manyDevices returns n unmerged devices, sorted as the engine sorts them.
func manyDevices(n int) []engine.DeviceRecord {
	out := make([]engine.DeviceRecord, n)
	for i := range out {
		out[i] = dev(fmt.Sprintf("user%06d@contoso.com", i), fmt.Sprintf("DEV%08d", i), "iPhone", "iPhone15C2",
			"iOS 17.5.1", engine.StateBlocked, -time.Duration(i%500)*time.Hour, -time.Duration(i%90)*time.Minute)
		out[i].AccessReason = "Individual"
		out[i].Decision = engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged,
			Reason: "not enrolled in Intune"}
		if i%3 == 0 {
			out[i].DeviceModel = "Pixel 8"
		}
	}
	return out
}

func TestCursorMovement(t *testing.T) {
	// At 80×24 a table shows 17 rows: 24 lines less the 2-line header, the
	// tabs, the column titles, the footer, the status line and the help.
	const body = 17
	tests := []struct {
		name       string
		keys       []string
		wantCursor int
		wantOffset int
	}{
		{name: "j", keys: []string{"j"}, wantCursor: 1},
		{name: "down", keys: []string{"down", "down"}, wantCursor: 2},
		{name: "k at the top stays", keys: []string{"k"}, wantCursor: 0},
		{name: "j then up", keys: []string{"j", "j", "up"}, wantCursor: 1},
		{name: "G", keys: []string{"G"}, wantCursor: 99, wantOffset: 100 - body},
		{name: "end", keys: []string{"end"}, wantCursor: 99, wantOffset: 100 - body},
		{name: "G then g", keys: []string{"G", "g"}, wantCursor: 0},
		{name: "G then home", keys: []string{"G", "home"}, wantCursor: 0},
		{name: "pgdown", keys: []string{"pgdown"}, wantCursor: body, wantOffset: body},
		{name: "pgdown pgup", keys: []string{"pgdown", "pgup"}, wantCursor: 0},
		{name: "j beyond the window scrolls", keys: repeat("j", body), wantCursor: body, wantOffset: 1},
		{name: "j at the bottom stays", keys: []string{"G", "j"}, wantCursor: 99, wantOffset: 100 - body},
		{name: "pgdown past the end", keys: repeat("pgdown", 10), wantCursor: 99, wantOffset: 100 - body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.devices = manyDevices(100)
			h := newHarness(t, f, Options{}, 80, 24).start()
			h.key("2")
			tbl := h.m.unmerged.table
			if got := tbl.body(); got != body {
				t.Fatalf("table body = %d rows, want %d", got, body)
			}
			h.key(tt.keys...)
			if tbl.cursor != tt.wantCursor || tbl.offset != tt.wantOffset {
				t.Errorf("cursor, offset = %d, %d; want %d, %d", tbl.cursor, tbl.offset, tt.wantCursor, tt.wantOffset)
			}
			screen := h.screen()
			checkScreen(t, screen, 80, 24)
			want := fmt.Sprintf(">  user%06d@", tt.wantCursor) // cursor, no selection mark
			if !strings.Contains(screen, want) {
				t.Errorf("screen does not mark row %d with %q:\n%s", tt.wantCursor, want, screen)
			}
		})
	}
}

func repeat(k string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = k
	}
	return out
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name     string
		tab      string
		keys     []string
		want     int // rows the filter lets through
		editing  bool
		wantText string
	}{
		{name: "by model", tab: "2", keys: []string{"/", "p", "i", "x", "e", "l"}, want: 2, editing: true, wantText: "pixel"},
		{name: "case-insensitive", tab: "2", keys: []string{"/", "P", "I", "X"}, want: 2, editing: true, wantText: "PIX"},
		{name: "by user", tab: "2", keys: []string{"/", "c", "h", "l", "o", "enter"}, want: 1, wantText: "chlo"},
		{name: "by device ID", tab: "4", keys: append([]string{"/"}, typeText("w1nph")...), want: 1, editing: true},
		{name: "by state", tab: "4", keys: append([]string{"/"}, typeText("quarantined")...), want: 1, editing: true},
		{name: "by who set it", tab: "3", keys: append([]string{"/"}, typeText("exchange rule")...), want: 1, editing: true},
		{name: "backspace widens", tab: "2", keys: []string{"/", "c", "h", "l", "o", "backspace", "backspace", "backspace"}, want: 4, editing: true, wantText: "c"},
		{name: "ctrl+u clears the input", tab: "2", keys: []string{"/", "z", "ctrl+u"}, want: 4, editing: true},
		{name: "esc clears", tab: "2", keys: []string{"/", "p", "esc"}, want: 4},
		{name: "esc after enter clears", tab: "2", keys: []string{"/", "p", "enter", "esc"}, want: 4},
		{name: "no match", tab: "2", keys: []string{"/", "z", "z", "z"}, want: 0, editing: true, wantText: "zzz"},
		{name: "cannot cross fields", tab: "2", keys: []string{"/", "8", "\t", "2"}, want: 0, editing: true},
		{name: "runs", tab: "5", keys: append([]string{"/"}, typeText("failed")...), want: 1, editing: true},
		{name: "journal", tab: "7", keys: append([]string{"/"}, typeText("alice")...), want: 1, editing: true},
		{name: "log", tab: "8", keys: append([]string{"/"}, typeText("warn")...), want: 1, editing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 80, 24).start()
			h.key(tt.tab)
			h.settle()
			h.key(tt.keys...)
			var n int
			var editing bool
			var text string
			switch v := h.m.current().(type) {
			case *deviceView:
				n, editing, text = v.table.len(), v.table.editing, v.table.filter
			case *runsView:
				n, editing, text = v.table.len(), v.table.editing, v.table.filter
			case *journalView:
				n, editing, text = v.table.len(), v.table.editing, v.table.filter
			case *logsView:
				n, editing, text = v.table.len(), v.table.editing, v.table.filter
			default:
				t.Fatalf("view %T has no table", v)
			}
			if n != tt.want {
				t.Errorf("rows = %d, want %d\n%s", n, tt.want, h.screen())
			}
			if editing != tt.editing {
				t.Errorf("editing = %v, want %v", editing, tt.editing)
			}
			if tt.wantText != "" && text != tt.wantText {
				t.Errorf("filter = %q, want %q", text, tt.wantText)
			}
			checkScreen(t, h.screen(), 80, 24)
		})
	}
}

func TestSort(t *testing.T) {
	tests := []struct {
		name      string
		keys      []string
		wantFirst string // the first row's user
		wantTitle string // the sorted column's title
	}{
		{name: "natural order", keys: nil, wantFirst: "ben.novak"},
		{name: "o sorts by user", keys: []string{"o"}, wantFirst: "ben.novak", wantTitle: "User▲"},
		{name: "O reverses", keys: []string{"o", "O"}, wantFirst: "hugo.smith", wantTitle: "User▼"},
		{name: "o o sorts by type", keys: []string{"o", "o"}, wantFirst: "ben.novak", wantTitle: "Type▲"},
		{name: "by last sync", keys: repeat("o", 6), wantFirst: "hugo.smith", wantTitle: "Last s…▲"},
		{name: "past the last column back to natural", keys: repeat("o", 10), wantFirst: "ben.novak"},
		{name: "O from natural sorts descending", keys: []string{"O"}, wantFirst: "hugo.smith", wantTitle: "User▼"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 120, 40).start()
			h.key("2")
			h.key(tt.keys...)
			first := h.m.unmerged.table.row(0).Mailbox
			if !strings.HasPrefix(first, tt.wantFirst) {
				t.Errorf("first row = %s, want %s…", first, tt.wantFirst)
			}
			if tt.wantTitle != "" && !strings.Contains(h.screen(), tt.wantTitle) {
				t.Errorf("column titles do not show %q:\n%s", tt.wantTitle, h.screen())
			}
		})
	}
}

func TestSortManyRowsInCommand(t *testing.T) {
	f := newFake()
	f.devices = manyDevices(syncSortMax + 10)
	h := newHarness(t, f, Options{}, 120, 40).start()
	h.key("2", "G")
	_, cmd := h.m.Update(keyPress("O")) // user, descending: a sort in a command
	if cmd == nil {
		t.Fatal("sorting many rows returned no command: it sorted inside Update")
	}
	tbl := h.m.unmerged.table
	if tbl.data.spec != natural {
		t.Errorf("order changed before the sorted order arrived")
	}
	h.run(cmd)
	h.until("sorted", func(*Model) bool { return tbl.data.spec.col == 0 })
	last := fmt.Sprintf("user%06d@contoso.com", syncSortMax+9)
	if got := tbl.current().Mailbox; got != last || tbl.cursor != 0 {
		t.Errorf("cursor on row %d (%s) after the sort, want it on the row it was on (%s), now first", tbl.cursor, got, last)
	}
	if got := tbl.row(tbl.len() - 1).Mailbox; got != "user000000@contoso.com" {
		t.Errorf("last row = %s, want the first user", got)
	}
	// A reload keeps the order: the command sorts the new rows too.
	h.send(resubscribeMsg{})
	h.until("reloaded", func(*Model) bool { return f.callCount("Devices") >= 2 && !h.m.devLoad.inFlight })
	if tbl.data.spec.col != 0 || !tbl.data.spec.desc {
		t.Errorf("sort after a reload = %+v, want user descending", tbl.data.spec)
	}
}

func TestFilterManyRowsInCommand(t *testing.T) {
	f := newFake()
	f.devices = manyDevices(syncScanMax + 10)
	h := newHarness(t, f, Options{}, 120, 40).start()
	h.act("2", "/")
	_, cmd := h.m.Update(keyPress("9"))
	if cmd == nil {
		t.Fatal("filtering many rows returned no command: it scanned inside Update")
	}
	tbl := h.m.unmerged.table
	if !strings.Contains(h.screen(), "filtering 20,010 unmerged EAS devices…") {
		t.Errorf("the footer does not say a filter is under way:\n%s", h.screen())
	}
	// A second key before the first scan ends: the first result is stale.
	_, cmd2 := h.m.Update(keyPress("9"))
	stale := cmd()
	h.send(stale)
	if tbl.needle != "" || !tbl.filtering {
		t.Errorf("a stale scan's result was taken (needle %q)", tbl.needle)
	}
	h.run(cmd2)
	h.until("filtered", func(*Model) bool { return !tbl.filtering })
	want := 0
	for i := range f.devices {
		if strings.Contains(deviceSearch(&f.devices[i]), "99") {
			want++
		}
	}
	if tbl.needle != "99" || tbl.len() != want {
		t.Errorf("filter %q shows %d rows, want 99 showing %d", tbl.needle, tbl.len(), want)
	}
	if got := tbl.current(); got == nil || !strings.Contains(deviceSearch(got), "99") {
		t.Errorf("cursor row %v does not match the filter", got)
	}
}

func TestSelection(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want int
	}{
		{name: "space selects and moves down", keys: []string{"space", "space"}, want: 2},
		{name: "space twice on one row unselects", keys: []string{"space", "k", "space"}, want: 0},
		{name: "* selects every row shown", keys: []string{"*"}, want: 4},
		{name: "* with a filter selects the matches", keys: []string{"/", "p", "i", "x", "enter", "*"}, want: 2},
		{name: "* twice unselects", keys: []string{"*", "*"}, want: 0},
		{name: "esc clears the selection", keys: []string{"space", "esc"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 80, 24).start()
			h.key("2")
			h.key(tt.keys...)
			_, sel := h.m.unmerged.targets()
			if len(sel) != tt.want {
				t.Errorf("selected %d devices, want %d", len(sel), tt.want)
			}
			if tt.want > 0 && !strings.Contains(h.screen(), fmt.Sprintf("%d selected", tt.want)) {
				t.Errorf("footer does not count the selection:\n%s", h.screen())
			}
		})
	}
}

func TestSyncKeys(t *testing.T) {
	tests := []struct {
		name       string
		key        string
		opts       Options
		engineRO   bool
		want       engine.SyncRequest
		wantStatus engine.RunStatus
		wantTab    tabID
	}{
		{name: "s: full sync", key: "s", want: engine.SyncRequest{Kind: engine.RunFull},
			wantStatus: engine.StatusSucceeded, wantTab: tabOverview},
		{name: "S: quick sync", key: "S", want: engine.SyncRequest{Kind: engine.RunQuick},
			wantStatus: engine.StatusSucceeded, wantTab: tabOverview},
		{name: "d: dry run shows its plan", key: "d", want: engine.SyncRequest{Kind: engine.RunFull, DryRun: true},
			wantStatus: engine.StatusDryRun, wantTab: tabPlan},
		{name: "read-only console asks for a dry run", key: "s", opts: Options{ReadOnly: true},
			want: engine.SyncRequest{Kind: engine.RunFull, DryRun: true}, wantStatus: engine.StatusDryRun, wantTab: tabPlan},
		{name: "read-only engine asks for a dry run", key: "S", engineRO: true,
			want: engine.SyncRequest{Kind: engine.RunQuick, DryRun: true}, wantStatus: engine.StatusDryRun, wantTab: tabPlan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.status.ReadOnly = tt.engineRO
			h := newHarness(t, f, tt.opts, 80, 24).start()
			_, cmd := h.m.Update(keyPress(tt.key))
			if cmd == nil {
				t.Fatal("the key returned no command")
			}
			if !h.m.running() {
				t.Error("no run under way after the key")
			}
			if want := string(tt.want.Kind) + " sync: starting"; !strings.Contains(h.screen(), want) {
				t.Errorf("header does not show %q:\n%s", want, h.screen())
			}
			if n := f.callCount("Sync"); n != 0 {
				t.Errorf("Update called Sync itself (%d calls): engine calls belong in commands", n)
			}
			h.run(cmd)
			h.until("run in history", func(m *Model) bool {
				n, _ := m.runs.Count()
				return n == 4 && !m.running()
			})
			tt.want.Trigger, tt.want.Actor = engine.TriggerManual, "tester"
			if reqs := f.syncRequests(); len(reqs) != 1 || reqs[0] != tt.want {
				t.Fatalf("sync requests = %+v, want [%+v]", reqs, tt.want)
			}
			if first := h.m.runs.runs[0]; first.ID != "run-4" || first.Status != tt.wantStatus {
				t.Errorf("newest run = %s %s, want run-4 %s", first.ID, first.Status, tt.wantStatus)
			}
			if h.m.active != tt.wantTab {
				t.Errorf("after the run the console shows %s, want %s", tabTitles[h.m.active], tabTitles[tt.wantTab])
			}
			if tt.wantStatus == engine.StatusDryRun {
				if id := h.m.plan.show.plan.ID; id != "plan-dry" || h.m.plan.show.held {
					t.Errorf("Plan view shows %s (held %v), want the dry run's plan", id, h.m.plan.show.held)
				}
			}
		})
	}
}

func TestSecondSyncSaysAlreadyRunning(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	h := newHarness(t, f, Options{}, 80, 24).start()
	h.key("s")
	h.until("progress", inPhase(engine.PhaseApply))
	_, cmd := h.m.Update(keyPress("S"))
	if cmd != nil {
		t.Error("a second sync key returned a command; want none while a sync is running")
	}
	if !strings.Contains(h.screen(), "Warning: a sync is already running (applying changes 1/2)") {
		t.Errorf("screen does not say a sync is already running:\n%s", h.screen())
	}
	close(f.gate)
	h.until("run finished", func(m *Model) bool { return !m.running() })
	if n := len(f.syncRequests()); n != 1 {
		t.Errorf("engine got %d sync requests, want 1", n)
	}
	// Once the run has ended, s works again.
	f.gate = nil
	h.key("s")
	h.until("second run", func(m *Model) bool { return len(f.syncRequests()) == 2 && !m.running() })
}

func TestCancelKey(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	t.Cleanup(func() { close(f.gate) })
	h := newHarness(t, f, Options{}, 80, 24).start()
	h.key("x")
	if !strings.Contains(h.screen(), "x (cancel sync) is off: no sync is running") {
		t.Errorf("x without a run does not say why it does nothing:\n%s", h.screen())
	}
	h.key("s")
	h.until("progress", inPhase(engine.PhaseApply))
	h.key("x")
	h.until("cancel asked", func(*Model) bool { return len(f.did()) == 1 })
	if got := f.did()[0]; got != "cancel by tester" {
		t.Errorf("engine was asked %q, want a cancel by the console's user", got)
	}
}

func TestProgressEvents(t *testing.T) {
	h := newHarness(t, newFake(), Options{}, 120, 40).start()
	run := engine.Run{ID: "run-9", Kind: engine.RunQuick, Trigger: engine.TriggerSchedule,
		Status: engine.StatusRunning, Started: at(-time.Minute)}
	steps := []struct {
		name       string
		evs        []engine.Event
		wantHeader string
	}{
		{name: "run started", evs: []engine.Event{{Kind: engine.EventRunStarted, Run: &run}},
			wantHeader: "quick sync: starting"},
		{name: "phase", evs: []engine.Event{{Kind: engine.EventPhase, Time: at(-50 * time.Second),
			Progress: &engine.Progress{Run: run, Phase: engine.PhaseObserveIntune}}},
			wantHeader: "quick sync: reading Intune"},
		{name: "a burst shows its last progress", evs: []engine.Event{
			{Kind: engine.EventPhase, Time: at(-40 * time.Second), Progress: &engine.Progress{Run: run, Phase: engine.PhaseApply, Total: 300}},
			{Kind: engine.EventProgress, Time: at(-30 * time.Second), Progress: &engine.Progress{Run: run, Phase: engine.PhaseApply, Done: 60, Total: 300}},
			{Kind: engine.EventProgress, Time: at(-20 * time.Second), Progress: &engine.Progress{Run: run, Phase: engine.PhaseApply, Done: 120, Total: 300}},
		}, wantHeader: "quick sync: applying changes 120/300 ████░░░░░░"},
		{name: "progress without total", evs: []engine.Event{{Kind: engine.EventPhase, Time: at(-10 * time.Second),
			Progress: &engine.Progress{Run: run, Phase: engine.PhaseNotify, Done: 7}}},
			wantHeader: "quick sync: notifying users 7"},
	}
	for _, s := range steps {
		h.send(eventsMsg{evs: s.evs})
		if screen := h.screen(); !strings.Contains(screen, s.wantHeader) {
			t.Errorf("%s: header does not show %q:\n%s", s.name, s.wantHeader, screen)
		}
	}
	// The Overview lists the phases done and their durations.
	if screen := h.screen(); !strings.Contains(screen, "✓ reading Intune 10s · ✓ applying changes 30s · notifying users 7") {
		t.Errorf("overview does not show the phases:\n%s", screen)
	}
	h.key("5")
	if screen := h.screen(); !strings.Contains(screen, "quick schedule running") {
		t.Errorf("sync runs view does not show the running run:\n%s", screen)
	}

	// The end of the run refreshes the overview, the devices, the runs and
	// the journal.
	f := h.m.env.api.(*fakeAPI)
	before := map[string]int{}
	for _, k := range []string{"Status", "Devices", "Runs", "Journal"} {
		before[k] = f.callCount(k)
	}
	done := run
	done.Status, done.Finished = engine.StatusFailed, fixedNow
	done.Error = "read Intune: 401 Unauthorized"
	_, cmd := h.m.Update(eventsMsg{evs: []engine.Event{{Kind: engine.EventRunFinished, Run: &done}}})
	if h.m.env.shared.progress != nil {
		t.Error("progress still shown after the run finished")
	}
	if !strings.Contains(h.screen(), "Error: quick sync failed: read Intune: 401 Unauthorized") {
		t.Errorf("status line does not report the failed run:\n%s", h.screen())
	}
	h.run(cmd)
	h.until("refresh", func(*Model) bool {
		for k, n := range before {
			if f.callCount(k) <= n {
				return false
			}
		}
		return true
	})
	if n := h.m.runs.table.len(); n != 3 {
		t.Errorf("sync runs view has %d rows after the run ended, want the 3 stored runs", n)
	}
}

func TestEventBurstIsOneRefresh(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 80, 24).start()
	h.settle()
	before := f.callCount("Devices")
	evs := make([]engine.Event, 500)
	for i := range evs {
		evs[i] = engine.Event{Kind: engine.EventState}
	}
	h.send(eventsMsg{evs: evs})
	h.settle()
	if got := f.callCount("Devices") - before; got != 1 {
		t.Errorf("500 state events made %d device reads, want 1", got)
	}
}

func TestWaitForEventsCoalesces(t *testing.T) {
	ch := make(chan engine.Event, 100)
	for range 100 {
		ch <- engine.Event{Kind: engine.EventProgress}
	}
	msg := waitForEvents(ch)()
	batch, ok := msg.(eventsMsg)
	if !ok || len(batch.evs) != 100 || batch.closed {
		t.Fatalf("got %T with %d events, want one batch of all 100", msg, len(batch.evs))
	}
	close(ch)
	if _, ok := waitForEvents(ch)().(eventsClosedMsg); !ok {
		t.Error("a closed stream does not say so")
	}
}

func TestStaleProgressIgnored(t *testing.T) {
	h := newHarness(t, newFake(), Options{}, 80, 24).start()
	run := engine.Run{ID: "run-9", Kind: engine.RunFull, Status: engine.StatusSucceeded}
	h.send(eventsMsg{evs: []engine.Event{
		{Kind: engine.EventRunFinished, Run: &run},
		{Kind: engine.EventProgress, Progress: &engine.Progress{Run: run, Phase: engine.PhaseSave}},
	}})
	if h.m.env.shared.progress != nil {
		t.Error("a progress event of a finished run shows it as running again")
	}
}

func TestLostEventHealedByStatus(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 80, 24).start()
	run := engine.Run{ID: "run-9", Kind: engine.RunFull, Status: engine.StatusRunning, Started: at(-time.Minute)}

	// The overview shows a run the console never heard of.
	f.mu.Lock()
	f.status.Running = &engine.Progress{Run: run, Phase: engine.PhasePlan}
	f.mu.Unlock()
	h.run(h.m.refreshStatus())
	h.until("running from status", func(m *Model) bool { return m.env.shared.progress != nil })

	// Its end event is lost; the next overview ends it.
	f.mu.Lock()
	f.status.Running = nil
	f.mu.Unlock()
	h.run(h.m.refreshStatus())
	h.until("ended from status", func(m *Model) bool { return m.env.shared.progress == nil })
}

func TestEngineErrorsShowInStatusLine(t *testing.T) {
	boom := errors.New("control socket: connection reset")
	tests := []struct {
		name string
		prep func(*fakeAPI)
		act  func(*harness)
		want string
	}{
		{name: "devices", prep: func(f *fakeAPI) { f.errs["Devices"] = boom },
			want: "Error: read devices: control socket: connection reset"},
		{name: "journal", prep: func(f *fakeAPI) { f.errs["Journal"] = boom },
			want: "Error: read the journal: control socket: connection reset"},
		{name: "sync", act: func(h *harness) { h.send(syncDoneMsg{err: fmt.Errorf("full sync: %w", boom)}) },
			want: "Error: full sync: control socket: connection reset"},
		{name: "status", act: func(h *harness) { h.send(statusMsg{err: fmt.Errorf("read status: %w", boom)}) },
			want: "Error: read status: control socket: connection reset"},
		{name: "error text is cleaned", act: func(h *harness) { h.send(statusMsg{err: errors.New("bad \x1b[2J thing")}) },
			want: "Error: bad ␛[2J thing"},
		{name: "log event", act: func(h *harness) {
			h.send(eventsMsg{evs: []engine.Event{{Kind: engine.EventLog, Level: "warn", Message: "ex02 cooling down"}}})
		}, want: "Warning: ex02 cooling down"},
		{name: "a read-only engine refuses", act: func(h *harness) {
			h.send(actionDoneMsg{err: fmt.Errorf("wipe x: %w", engine.ErrReadOnly)})
		}, want: "Error: wipe x: read-only: this action changes Exchange or the store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			if tt.prep != nil {
				tt.prep(f)
			}
			h := newHarness(t, f, Options{}, 80, 24)
			h.run(h.m.Init())
			h.until("overview", func(m *Model) bool { return m.env.shared.loaded && m.events != nil })
			if tt.act != nil {
				tt.act(h)
			}
			h.until("error shown", func(m *Model) bool { return strings.Contains(h.screen(), tt.want) })
			checkScreen(t, h.screen(), 80, 24)
		})
	}
}

func TestEventStreamReconnects(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 80, 24).start()
	h.send(eventsClosedMsg{})
	if !strings.Contains(h.screen(), "lost the engine's event stream") {
		t.Errorf("screen does not say the event stream was lost:\n%s", h.screen())
	}
	h.send(resubscribeMsg{})
	h.until("resubscribed", func(m *Model) bool { return m.events != nil && f.callCount("Subscribe") == 2 })
}

func TestQuit(t *testing.T) {
	tests := []struct {
		name string
		keys []string
	}{
		{name: "q", keys: []string{"q"}},
		{name: "ctrl+c", keys: []string{"ctrl+c"}},
		{name: "ctrl+c while filtering", keys: []string{"2", "/", "ctrl+c"}},
		{name: "ctrl+c in a dialog", keys: []string{"2", "b", "ctrl+c"}},
		{name: "q in the help", keys: []string{"?", "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 80, 24).start()
			var cmd tea.Cmd
			for _, k := range tt.keys {
				_, cmd = h.m.Update(keyPress(k))
			}
			if cmd == nil {
				t.Fatal("no command")
			}
			if _, ok := cmd().(tea.QuitMsg); !ok {
				t.Error("the last key did not quit")
			}
			if h.m.env.ctx.Err() == nil {
				t.Error("quitting left the console's engine calls running")
			}
		})
	}
}

func TestHelpToggle(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		tab     string
		want    []string
		notWant []string
	}{
		{name: "device view", tab: "2", want: []string{"Device", "block by hand ⚠", "wipe ⚠", "sort by next column", "export CSV", "prev view"}},
		{name: "read-only hides what changes", tab: "2", opts: Options{ReadOnly: true},
			want:    []string{"read-only: keys that change Exchange or the store are off", "preview mail", "dry-run full sync"},
			notWant: []string{"block by hand", "wipe", "resend mail", "cancel sync"}},
		{name: "overview", tab: "1", want: []string{"Scroll", "full sync", "quick sync", "dry run"}, notWant: []string{"block by hand"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), tt.opts, 80, 24).start()
			h.key(tt.tab)
			short := h.screen()
			h.key("?")
			full := stripANSI(strings.Join(h.m.fullHelp(80), "\n"))
			for _, w := range tt.want {
				if !strings.Contains(full, w) {
					t.Errorf("full help lacks %q:\n%s", w, full)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(full, w) {
					t.Errorf("full help shows %q:\n%s", w, full)
				}
			}
			checkScreen(t, h.screen(), 80, 24)
			h.key("?")
			if got := h.screen(); got != short {
				t.Errorf("second ? does not restore the view:\n%s", got)
			}
		})
	}
}

func TestResize(t *testing.T) {
	tests := []struct {
		name string
		w, h int
	}{
		{name: "80x24", w: 80, h: 24},
		{name: "120x40", w: 120, h: 40},
		{name: "200x60", w: 200, h: 60},
		{name: "60x20", w: 60, h: 20},
		{name: "40x12", w: 40, h: 12},
	}
	h := newHarness(t, newFake(), Options{ReadOnly: true}, 80, 24).start()
	for _, tt := range tests {
		for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8"} {
			t.Run(tt.name+"/view"+k, func(t *testing.T) {
				h.send(tea.WindowSizeMsg{Width: tt.w, Height: tt.h})
				h.key(k)
				h.settle()
				checkScreen(t, h.screen(), tt.w, tt.h)
			})
		}
		t.Run(tt.name+"/detail", func(t *testing.T) {
			h.send(tea.WindowSizeMsg{Width: tt.w, Height: tt.h})
			h.key("4", "enter")
			h.settle()
			checkScreen(t, h.screen(), tt.w, tt.h)
			h.key("esc")
		})
	}
	t.Run("too small", func(t *testing.T) {
		h.send(tea.WindowSizeMsg{Width: 30, Height: 8})
		if got := h.screen(); !strings.HasPrefix(got, "terminal too small") {
			t.Errorf("screen = %q, want it to say the terminal is too small", got)
		}
	})
}

func TestEscapeSequencesRenderHarmlessly(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want string // the hostile model, shown as text
	}{
		{name: "unmerged", keys: []string{"2"}, want: "Evil␛[2J␛"},
		{name: "devices", keys: []string{"4"}, want: "iPhone Evil"},
		{name: "detail", keys: []string{"4", "/", "e", "v", "i", "l", "enter", "enter"}, want: "Evil␛[2J␛[31mModel␇"},
		{name: "dialog", keys: []string{"2", "j", "j", "b"}, want: "iPhone Evil␛[2J␛[31mModel␇"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 120, 40).start()
			for _, k := range tt.keys {
				h.key(k)
				h.settle()
			}
			raw := h.m.View().Content
			for _, bad := range []string{"\x1b[2J", "\x07", "\u009b", "\r", "\x1b[31mModel"} {
				if strings.Contains(raw, bad) {
					t.Errorf("rendered screen contains %q from a device field", bad)
				}
			}
			if !utf8.ValidString(raw) {
				t.Error("rendered screen is not valid UTF-8")
			}
			if !strings.Contains(stripANSI(raw), tt.want) {
				t.Errorf("the escape sequence is not shown as text %q:\n%s", tt.want, h.screen())
			}
		})
	}
}

// colourParam matches the SGR parameters that set a colour.
var colourParam = regexp.MustCompile(`^(3[0-9]|4[0-9]|9[0-7]|10[0-7])$`)

func TestNoColorKeepsMeaning(t *testing.T) {
	// Where colour is off (NO_COLOR), Bubble Tea renders through the ASCII
	// profile: colours go, attributes stay. The cursor row, the active tab
	// and a dialog's focused button must still stand out.
	tests := []struct {
		name string
		keys []string
		want []string
	}{
		{name: "table", keys: []string{"2"}, want: []string{"[2 Unmerged 4]", "READ-ONLY", ">  ben.novak"}},
		{name: "dialog", keys: []string{"2", "p"}, want: []string{"[ Close ]", "Subject: Enroll your phone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{ReadOnly: true}, 80, 24).start()
			h.key(tt.keys...)
			h.settle()
			var b strings.Builder
			w := &colorprofile.Writer{Forward: &b, Profile: colorprofile.ASCII}
			if _, err := w.WriteString(h.m.View().Content); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			sgr := regexp.MustCompile(`\x1b\[([0-9;:]*)m`)
			for _, m := range sgr.FindAllStringSubmatch(out, -1) {
				for _, p := range strings.Split(m[1], ";") {
					if colourParam.MatchString(p) {
						t.Fatalf("ASCII output sets a colour: %q", m[0])
					}
				}
			}
			if !strings.Contains(out, "\x1b[7m") {
				t.Error("ASCII output has no reverse video: the cursor row does not stand out")
			}
			screen := h.screen()
			for _, want := range tt.want {
				if !strings.Contains(screen, want) {
					t.Errorf("screen without colour lacks %q:\n%s", want, screen)
				}
			}
		})
	}
}

func TestOtherRunEndingWhileOursWaits(t *testing.T) {
	h := newHarness(t, newFake(), Options{}, 80, 24).start()
	h.m.Update(keyPress("S")) // our Sync call is left pending
	other := engine.Run{ID: "run-sched", Kind: engine.RunFull, Trigger: engine.TriggerSchedule, Status: engine.StatusRunning}
	h.send(eventsMsg{evs: []engine.Event{{Kind: engine.EventProgress, Progress: &engine.Progress{Run: other, Phase: engine.PhaseSave}}}})
	other.Status = engine.StatusSucceeded
	h.send(eventsMsg{evs: []engine.Event{{Kind: engine.EventRunFinished, Run: &other}}})
	p := h.m.env.shared.progress
	if !h.m.running() || p == nil || p.Run.ID != "" {
		t.Fatalf("progress = %+v; want our requested run still pending", p)
	}
	if !strings.Contains(h.screen(), "quick sync: starting") {
		t.Errorf("header does not show our quick run waiting:\n%s", h.screen())
	}
}

func TestMouse(t *testing.T) {
	f := newFake()
	f.devices = manyDevices(100)
	h := newHarness(t, f, Options{Mouse: true}, 120, 40).start()
	if got := h.m.View().MouseMode; got != tea.MouseModeCellMotion {
		t.Errorf("mouse mode = %v, want cell motion", got)
	}
	h.screen() // lays out the tab line
	span := h.m.tabSpans[tabDevices]
	h.send(tea.MouseClickMsg{X: span.from + 1, Y: headerHeight, Button: tea.MouseLeft})
	if h.m.active != tabDevices {
		t.Fatalf("a click on the Devices tab shows %s", tabTitles[h.m.active])
	}
	h.send(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	h.send(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if got := h.m.devices.table.cursor; got != 6 {
		t.Errorf("two wheel turns down put the cursor on row %d, want 6", got)
	}
	// Row 3 of the table: the title line is y=headerHeight+1.
	h.send(tea.MouseClickMsg{X: 5, Y: headerHeight + 1 + 3, Button: tea.MouseLeft})
	if got := h.m.devices.table.cursor; got != 2 {
		t.Errorf("a click on the third row put the cursor on row %d, want 2", got)
	}
	if got := New(f, Options{}).View().MouseMode; got != tea.MouseModeNone {
		t.Errorf("mouse mode without Options.Mouse = %v, want none", got)
	}
}

func TestSixteenColours(t *testing.T) {
	// The theme uses the terminal's own 16 colours, so a 16-colour or
	// 256-colour terminal shows what the console means, in the user's
	// scheme: no 256-colour or true-colour sequence is ever written.
	h := newHarness(t, newFake(), Options{}, 120, 40).start()
	extended := regexp.MustCompile(`\x1b\[[0-9;:]*[34]8[;:][25][;:]`)
	for _, keys := range [][]string{{"1"}, {"3"}, {"3", "b"}, {"6"}, {"2", "?"}} {
		h.key("esc", "esc", "esc")
		h.act(keys...)
		raw := h.m.View().Content
		if m := extended.FindString(raw); m != "" {
			t.Errorf("%v: the screen uses an extended colour: %q", keys, m)
		}
		if !strings.Contains(raw, "\x1b[") {
			t.Errorf("%v: the screen has no styles at all", keys)
		}
	}
}
