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
		want viewID
	}{
		{name: "starts on unmerged", keys: nil, want: viewUnmerged},
		{name: "tab", keys: []string{"tab"}, want: viewBlocked},
		{name: "tab twice", keys: []string{"tab", "tab"}, want: viewRuns},
		{name: "tab wraps", keys: []string{"tab", "tab", "tab"}, want: viewUnmerged},
		{name: "shift+tab wraps back", keys: []string{"shift+tab"}, want: viewRuns},
		{name: "2", keys: []string{"2"}, want: viewBlocked},
		{name: "3", keys: []string{"3"}, want: viewRuns},
		{name: "3 then 1", keys: []string{"3", "1"}, want: viewUnmerged},
		{name: "digits type into an open filter", keys: []string{"/", "2"}, want: viewUnmerged},
		{name: "enter closes the filter", keys: []string{"/", "x", "enter", "3"}, want: viewRuns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 80, 24).start()
			h.key(tt.keys...)
			if h.m.active != tt.want {
				t.Errorf("active view = %d, want %d", h.m.active, tt.want)
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
		out[i].Decision = engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged,
			Reason: "not enrolled in Intune"}
		if i%3 == 0 {
			out[i].DeviceModel = "Pixel 8"
		}
	}
	return out
}

func TestCursorMovement(t *testing.T) {
	// At 80×24 the unmerged table shows 15 rows: 24 lines less a 4-line
	// header, the tabs, the column titles, the footer, status and help.
	const body = 15
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
			tbl := h.m.views[viewUnmerged].(*deviceView).table
			if got := tbl.body(); got != body {
				t.Fatalf("table body = %d rows, want %d", got, body)
			}
			h.key(tt.keys...)
			if tbl.cursor != tt.wantCursor || tbl.offset != tt.wantOffset {
				t.Errorf("cursor, offset = %d, %d; want %d, %d", tbl.cursor, tbl.offset, tt.wantCursor, tt.wantOffset)
			}
			screen := h.screen()
			checkScreen(t, screen, 80, 24)
			want := fmt.Sprintf("> user%06d@", tt.wantCursor)
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
		keys     []string
		want     int // rows the filter lets through
		editing  bool
		wantText string
	}{
		{name: "by model", keys: []string{"/", "p", "i", "x", "e", "l"}, want: 2, editing: true, wantText: "pixel"},
		{name: "case-insensitive", keys: []string{"/", "P", "I", "X"}, want: 2, editing: true, wantText: "PIX"},
		{name: "by user", keys: []string{"/", "c", "h", "l", "o", "enter"}, want: 1, wantText: "chlo"},
		{name: "backspace widens", keys: []string{"/", "c", "h", "l", "o", "backspace", "backspace", "backspace"}, want: 4, editing: true, wantText: "c"},
		{name: "esc clears", keys: []string{"/", "p", "esc"}, want: 4},
		{name: "esc after enter clears", keys: []string{"/", "p", "enter", "esc"}, want: 4},
		{name: "no match", keys: []string{"/", "z", "z", "z"}, want: 0, editing: true, wantText: "zzz"},
		{name: "cannot cross fields", keys: []string{"/", "8", "\t", "2"}, want: 0, editing: true},
		{name: "access state", keys: []string{"/", "q", "u", "a", "r"}, want: 1, editing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFake(), Options{}, 80, 24).start()
			h.key(tt.keys...)
			tbl := h.m.views[viewUnmerged].(*deviceView).table
			if got := tbl.len(); got != tt.want {
				t.Errorf("rows = %d, want %d", got, tt.want)
			}
			if tbl.editing != tt.editing {
				t.Errorf("editing = %v, want %v", tbl.editing, tt.editing)
			}
			if tt.wantText != "" && tbl.filter != tt.wantText {
				t.Errorf("filter = %q, want %q", tbl.filter, tt.wantText)
			}
			checkScreen(t, h.screen(), 80, 24)
		})
	}
}

func TestSyncKey(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		engineRO   bool
		wantDryRun bool
		wantStatus engine.RunStatus
	}{
		{name: "full sync", wantStatus: engine.StatusSucceeded},
		{name: "read-only console asks for a dry run", opts: Options{ReadOnly: true}, wantDryRun: true, wantStatus: engine.StatusDryRun},
		{name: "read-only engine asks for a dry run", engineRO: true, wantDryRun: true, wantStatus: engine.StatusDryRun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.status.ReadOnly = tt.engineRO
			h := newHarness(t, f, tt.opts, 80, 24).start()
			_, cmd := h.m.Update(keyPress("s"))
			if cmd == nil {
				t.Fatal("s returned no command")
			}
			if !h.m.syncing || h.m.progress == nil {
				t.Errorf("after s: syncing = %v, progress = %v; want a run under way", h.m.syncing, h.m.progress)
			}
			if !strings.Contains(h.screen(), "full sync: starting") {
				t.Errorf("header does not show the requested run:\n%s", h.screen())
			}
			if n := f.callCount("Sync"); n != 0 {
				t.Errorf("Update called Sync itself (%d calls): engine calls belong in commands", n)
			}
			h.run(cmd)
			h.until("run in history", func(m *Model) bool {
				n, _ := m.views[viewRuns].Count()
				return n == 4 && !m.running()
			})
			reqs := f.syncRequests()
			want := engine.SyncRequest{Kind: engine.RunFull, Trigger: engine.TriggerManual, DryRun: tt.wantDryRun, Actor: "tester"}
			if len(reqs) != 1 || reqs[0] != want {
				t.Fatalf("sync requests = %+v, want [%+v]", reqs, want)
			}
			first := h.m.views[viewRuns].(*runsView).runs[0]
			if first.ID != "run-4" || first.Status != tt.wantStatus {
				t.Errorf("newest run = %s %s, want run-4 %s", first.ID, first.Status, tt.wantStatus)
			}
			h.key("3")
			if screen := h.screen(); !strings.Contains(screen, "2026-03-02 09:59 full  manual") {
				t.Errorf("sync runs view does not show the new run:\n%s", screen)
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
	_, cmd := h.m.Update(keyPress("s"))
	if cmd != nil {
		t.Error("second s returned a command; want none while a sync is running")
	}
	if !strings.Contains(h.m.note, "already running") {
		t.Errorf("status line = %q, want it to say a sync is already running", h.m.note)
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

func TestProgressEvents(t *testing.T) {
	h := newHarness(t, newFake(), Options{}, 120, 40).start()
	run := engine.Run{ID: "run-9", Kind: engine.RunQuick, Trigger: engine.TriggerSchedule,
		Status: engine.StatusRunning, Started: at(-time.Minute)}
	steps := []struct {
		name       string
		ev         engine.Event
		wantHeader string
		wantRows   int // rows in the sync runs view
	}{
		{name: "run started", ev: engine.Event{Kind: engine.EventRunStarted, Run: &run},
			wantHeader: "quick sync: starting", wantRows: 4},
		{name: "phase", ev: engine.Event{Kind: engine.EventPhase, Progress: &engine.Progress{Run: run, Phase: engine.PhaseObserveIntune}},
			wantHeader: "quick sync: reading Intune", wantRows: 4},
		{name: "progress", ev: engine.Event{Kind: engine.EventProgress, Progress: &engine.Progress{Run: run, Phase: engine.PhaseApply, Done: 120, Total: 300}},
			wantHeader: "quick sync: applying changes 120/300", wantRows: 4},
		{name: "progress without total", ev: engine.Event{Kind: engine.EventProgress, Progress: &engine.Progress{Run: run, Phase: engine.PhaseNotify, Done: 7}},
			wantHeader: "quick sync: notifying users 7", wantRows: 4},
	}
	for _, s := range steps {
		h.send(eventMsg{ev: s.ev})
		screen := h.screen()
		if !strings.Contains(screen, s.wantHeader) {
			t.Errorf("%s: header does not show %q:\n%s", s.name, s.wantHeader, screen)
		}
		if n := h.m.views[viewRuns].(*runsView).table.len(); n != s.wantRows {
			t.Errorf("%s: sync runs view has %d rows, want %d", s.name, n, s.wantRows)
		}
	}
	h.key("3")
	if screen := h.screen(); !strings.Contains(screen, "quick schedule running") {
		t.Errorf("sync runs view does not show the running run:\n%s", screen)
	}

	// The end of the run refreshes the overview, the devices and the runs.
	before := map[string]int{"Status": 0, "Devices": 0, "Runs": 0}
	for k := range before {
		before[k] = h.m.env.api.(*fakeAPI).callCount(k)
	}
	done := run
	done.Status, done.Finished = engine.StatusFailed, fixedNow
	done.Error = "read Intune: 401 Unauthorized"
	_, cmd := h.m.Update(eventMsg{ev: engine.Event{Kind: engine.EventRunFinished, Run: &done}})
	if h.m.progress != nil {
		t.Error("progress still shown after the run finished")
	}
	if !strings.Contains(h.screen(), "Error: quick sync failed: read Intune: 401 Unauthorized") {
		t.Errorf("status line does not report the failed run:\n%s", h.screen())
	}
	h.run(cmd)
	f := h.m.env.api.(*fakeAPI)
	h.until("refresh", func(*Model) bool {
		// Devices: one call for unmerged, two for blocked and quarantined.
		return f.callCount("Status") > before["Status"] && f.callCount("Runs") > before["Runs"] &&
			f.callCount("Devices") >= before["Devices"]+3
	})
	if n := h.m.views[viewRuns].(*runsView).table.len(); n != 3 {
		t.Errorf("sync runs view has %d rows after the run ended, want the 3 stored runs", n)
	}
}

func TestStaleProgressIgnored(t *testing.T) {
	h := newHarness(t, newFake(), Options{}, 80, 24).start()
	run := engine.Run{ID: "run-9", Kind: engine.RunFull, Status: engine.StatusSucceeded}
	h.send(eventMsg{ev: engine.Event{Kind: engine.EventRunFinished, Run: &run}})
	h.send(eventMsg{ev: engine.Event{Kind: engine.EventProgress, Progress: &engine.Progress{Run: run, Phase: engine.PhaseSave}}})
	if h.m.progress != nil {
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
	h.until("running from status", func(m *Model) bool { return m.progress != nil })

	// Its end event is lost; the next overview ends it.
	f.mu.Lock()
	f.status.Running = nil
	f.mu.Unlock()
	h.run(h.m.refreshStatus())
	h.until("ended from status", func(m *Model) bool { return m.progress == nil })
}

func TestEngineErrorsShowInStatusLine(t *testing.T) {
	boom := errors.New("control socket: connection reset")
	tests := []struct {
		name string
		prep func(*fakeAPI)
		act  func(*harness)
		want string
	}{
		{name: "devices", prep: func(f *fakeAPI) { f.devicesErr = boom },
			want: "devices: control socket: connection reset"},
		{name: "sync", act: func(h *harness) { h.send(syncDoneMsg{err: fmt.Errorf("full sync: %w", boom)}) },
			want: "Error: full sync: control socket: connection reset"},
		{name: "status", act: func(h *harness) { h.send(statusMsg{err: fmt.Errorf("read status: %w", boom)}) },
			want: "Error: read status: control socket: connection reset"},
		{name: "error text is cleaned", act: func(h *harness) { h.send(statusMsg{err: errors.New("bad \x1b[2J thing")}) },
			want: "Error: bad ␛[2J thing"},
		{name: "log event", act: func(h *harness) {
			h.send(eventMsg{ev: engine.Event{Kind: engine.EventLog, Level: "warn", Message: "ex02 cooling down"}})
		}, want: "Warning: ex02 cooling down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			if tt.prep != nil {
				tt.prep(f)
			}
			h := newHarness(t, f, Options{}, 80, 24)
			h.run(h.m.Init())
			h.until("overview", func(m *Model) bool { return m.header.loaded && m.events != nil })
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
		{name: "ctrl+c while filtering", keys: []string{"/", "ctrl+c"}},
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
	h := newHarness(t, newFake(), Options{}, 80, 24).start()
	short := h.screen()
	h.key("?")
	full := h.screen()
	if !strings.Contains(full, "prev view") || strings.Contains(short, "prev view") {
		t.Errorf("? does not toggle the full help:\n%s\n---\n%s", short, full)
	}
	checkScreen(t, full, 80, 24)
	h.key("?")
	if got := h.screen(); got != short {
		t.Errorf("second ? does not restore the short help:\n%s", got)
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
		for _, k := range []string{"1", "2", "3"} {
			t.Run(tt.name+"/view"+k, func(t *testing.T) {
				h.send(tea.WindowSizeMsg{Width: tt.w, Height: tt.h})
				h.key(k)
				checkScreen(t, h.screen(), tt.w, tt.h)
			})
		}
	}
	t.Run("too small", func(t *testing.T) {
		h.send(tea.WindowSizeMsg{Width: 30, Height: 8})
		if got := h.screen(); !strings.HasPrefix(got, "terminal too small") {
			t.Errorf("screen = %q, want it to say the terminal is too small", got)
		}
	})
}

func TestEscapeSequencesRenderHarmlessly(t *testing.T) {
	h := newHarness(t, newFake(), Options{}, 120, 40).start()
	raw := h.m.View().Content
	for _, bad := range []string{"\x1b[2J", "\x07", "\u009b", "\r", "\x1b[31mModel"} {
		if strings.Contains(raw, bad) {
			t.Errorf("rendered screen contains %q from a device field", bad)
		}
	}
	if !utf8.ValidString(raw) {
		t.Error("rendered screen is not valid UTF-8")
	}
	if !strings.Contains(raw, "Evil␛[2J␛[31mM") {
		t.Errorf("the escape sequence is not shown as text:\n%s", h.screen())
	}
}

// colourParam matches the SGR parameters that set a colour.
var colourParam = regexp.MustCompile(`^(3[0-9]|4[0-9]|9[0-7]|10[0-7])$`)

func TestNoColorKeepsMeaning(t *testing.T) {
	// Where colour is off (NO_COLOR), Bubble Tea renders through the ASCII
	// profile: colours go, attributes stay. The cursor row and the active
	// tab must still stand out.
	h := newHarness(t, newFake(), Options{ReadOnly: true}, 80, 24).start()
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
	for _, want := range []string{"[1 Unmerged 4]", "READ-ONLY", "> ben.novak"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen without colour lacks %q", want)
		}
	}
}

func TestOtherRunEndingWhileOursWaits(t *testing.T) {
	h := newHarness(t, newFake(), Options{}, 80, 24).start()
	h.m.Update(keyPress("s")) // our Sync call is left pending
	other := engine.Run{ID: "run-sched", Kind: engine.RunQuick, Trigger: engine.TriggerSchedule, Status: engine.StatusRunning}
	h.send(eventMsg{ev: engine.Event{Kind: engine.EventProgress, Progress: &engine.Progress{Run: other, Phase: engine.PhaseSave}}})
	other.Status = engine.StatusSucceeded
	h.send(eventMsg{ev: engine.Event{Kind: engine.EventRunFinished, Run: &other}})
	if !h.m.running() || h.m.progress == nil || h.m.progress.Run.ID != "" {
		t.Fatalf("progress = %+v; want our requested run still pending", h.m.progress)
	}
	if !strings.Contains(h.screen(), "full sync: starting") {
		t.Errorf("header does not show our run waiting:\n%s", h.screen())
	}
}
