package tui

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// fixedNow is the console's clock in tests.
var fixedNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

// at is a time relative to fixedNow.
func at(d time.Duration) time.Time { return fixedNow.Add(d) }

// fakeAPI is an in-memory engine.API with a fixed set of devices and runs:
// the console's edge, faked for its unit tests only. Sync records the
// request, emits the events a run emits and adds the run to the history.
type fakeAPI struct {
	// API supplies the admin actions this skeleton's console does not call
	// yet; calling one panics, which would fail the test.
	engine.API
	mu       sync.Mutex
	status   engine.Status
	devices  []engine.DeviceRecord
	runs     []engine.Run // newest first
	subs     map[chan engine.Event]struct{}
	requests []engine.SyncRequest
	calls    map[string]int
	// gate, when set, holds Sync after its first progress event until the
	// test closes it.
	gate chan struct{}
	// devicesErr, when set, fails Devices.
	devicesErr error
}

// newFake returns a fake holding the fixture organisation.
func newFake() *fakeAPI {
	f := &fakeAPI{
		devices: fixtureDevices(),
		runs:    fixtureRuns(),
		subs:    map[chan engine.Event]struct{}{},
		calls:   map[string]int{},
	}
	f.status = engine.Status{
		Counts:  countsOf(f.devices),
		LastRun: &f.runs[0],
		Exchange: []engine.Health{
			{Name: "ex01.contoso.local", OK: true, InUse: true, LastCall: at(-time.Minute)},
			{Name: "ex02.contoso.local", Error: "connection refused", LastCall: at(-time.Hour),
				CoolDownUntil: at(10 * time.Minute)},
		},
		Intune: engine.Health{Name: "graph.microsoft.com", OK: true, LastCall: at(-time.Minute)},
		Policy: "unmanaged: block · noncompliant: block · all mailboxes",
	}
	return f
}

// dev builds a fixture device record.
func dev(mailbox, id, typ, model, os string, state engine.AccessState, first, last time.Duration) engine.DeviceRecord {
	return engine.DeviceRecord{EASDevice: engine.EASDevice{
		Mailbox: mailbox, PrimarySMTP: mailbox, DeviceID: id, DeviceType: typ, DeviceModel: model,
		DeviceOS: os, ClientType: "EAS", AccessState: state, FirstSync: at(first), LastSync: at(last),
	}, InScope: true}
}

// fixtureDevices is a small organisation covering every state the views
// show, including a device whose fields carry escape sequences.
func fixtureDevices() []engine.DeviceRecord {
	day := 24 * time.Hour
	anna := dev("anna.schmidt@contoso.com", "ApplF17XK2QWE", "iPhone", "iPhone15C2", "iOS 17.5.1 21F90",
		engine.StateAllowed, -90*day, -5*time.Minute)
	anna.MDMID, anna.Link = "a1b2c3d4-0001", engine.LinkEASID
	anna.Decision = engine.Decision{Access: engine.AccessAllow, Code: engine.ReasonCompliant, Reason: "enrolled and compliant"}

	ben := dev("ben.novak@contoso.com", "androidc1234567", "Android", "Pixel 8", "Android 14",
		engine.StateQuarantined, -10*day, -2*time.Hour)
	ben.Decision = engine.Decision{Access: engine.AccessQuarantine, Code: engine.ReasonUnmanaged,
		Reason: "not enrolled in Intune (no MDM record with EAS ID androidc1234567)"}
	ben.Since = at(-9 * day)
	ben.Notify = engine.NotifyState{FirstSent: at(-9 * day), LastSent: at(-3 * day), Count: 2}

	chloe := dev("chloe.dubois@contoso.com", "SEC1A2B3C4D5E6", "SAMSUNGSMS911B", "SM-S911B", "Android 14",
		engine.StateBlocked, -6*day, -30*time.Minute)
	chloe.Decision = engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged,
		Reason: "not enrolled in Intune (no MDM record with EAS ID SEC1A2B3C4D5E6)"}
	chloe.Since = at(-3 * day)
	chloe.Notify = engine.NotifyState{FirstSent: at(-6 * day), LastSent: at(-3 * day), Count: 3}

	david := dev("david.rossi@contoso.com", "EVIL0001", "iPhone", "Evil\x1b[2J\x1b[31mModel\x07", "iOS\n17\r\x9b1m",
		engine.StateAllowed, -2*day, -10*time.Minute)
	david.Decision = engine.Decision{Access: engine.AccessAllow, Code: engine.ReasonGrace,
		Reason: "in the grace period until 2026-03-05"}

	emma := dev("emma.jensen@contoso.com", "W1NPH0NE", "WP8", "Nokia Lumia 930", "Windows Phone 8.1",
		engine.StateBlocked, -400*day, -20*day)
	emma.AccessReason = "DeviceRule"
	emma.MDMID, emma.Link = "a1b2c3d4-0005", engine.LinkManual

	felix := dev("felix.kowalski@contoso.com", "ApplIPAD77", "iPad", "iPad13C16", "iOS 18.1 22B83",
		engine.StateQuarantined, -30*day, -1*day)
	felix.MDMID, felix.Link = "a1b2c3d4-0006", engine.LinkEASID
	felix.Decision = engine.Decision{Access: engine.AccessQuarantine, Code: engine.ReasonNoncompliant,
		Reason: "noncompliant in Intune (passcode policy)"}
	felix.Since = at(-12 * day)

	grace := dev("grace.garcia@contoso.com", "OUTLOOKAPP01", "Outlook", "Outlook for iOS", "iOS 18.3.2",
		engine.StateAllowed, -50*day, -1*time.Hour)
	grace.ClientType = "Outlook"

	hugo := dev("hugo.smith@contoso.com", "androidd999", "Android", "Pixel 7a", "Android 13",
		engine.StateDeviceDiscovery, -1*day, -3*time.Hour)
	hugo.Notify = engine.NotifyState{LastTried: at(-time.Hour), LastError: "smtp: 550 mailbox unavailable"}

	return []engine.DeviceRecord{anna, ben, chloe, david, emma, felix, grace, hugo}
}

// fixtureRuns is the run history, newest first.
func fixtureRuns() []engine.Run {
	return []engine.Run{
		{ID: "run-3", Kind: engine.RunFull, Trigger: engine.TriggerSchedule, Status: engine.StatusSucceeded,
			Started: at(-4 * time.Hour), Finished: at(-4*time.Hour + 12*time.Second), Server: "ex01.contoso.local",
			Counts: engine.Counts{EASDevices: 8, MDMDevices: 5, Merged: 3, Unmerged: 4, ChangesPlanned: 4,
				ChangesApplied: 4, NotificationsSent: 2}},
		{ID: "run-2", Kind: engine.RunQuick, Trigger: engine.TriggerSchedule, Status: engine.StatusFailed,
			Started: at(-14 * time.Hour), Finished: at(-14*time.Hour + 3*time.Minute + 5*time.Second),
			Error: "list mobile devices on ex02.contoso.local: connection refused"},
		{ID: "run-1", Kind: engine.RunFull, Trigger: engine.TriggerStartup, Status: engine.StatusBraked,
			Started: at(-28 * time.Hour), Finished: at(-28*time.Hour + 850*time.Millisecond),
			Counts:   engine.Counts{EASDevices: 8, ChangesPlanned: 120},
			Problems: []string{"plan would block 120 devices (limit 50)", "intune returned 0 devices"}},
	}
}

// countsOf counts records as the engine's overview does.
func countsOf(recs []engine.DeviceRecord) engine.Counts {
	var c engine.Counts
	for i := range recs {
		r := &recs[i]
		c.EASDevices++
		if r.Merged() {
			c.Merged++
		} else if r.IsEAS() {
			c.Unmerged++
		}
		switch r.AccessState {
		case engine.StateAllowed:
			c.Allowed++
		case engine.StateBlocked:
			c.Blocked++
		case engine.StateQuarantined:
			c.Quarantined++
		}
		if r.Decision.Exempt {
			c.Exempt++
		}
	}
	return c
}

func (f *fakeAPI) count(name string) {
	f.mu.Lock()
	f.calls[name]++
	f.mu.Unlock()
}

// callCount returns how often a method was called.
func (f *fakeAPI) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// syncRequests returns the Sync requests so far.
func (f *fakeAPI) syncRequests() []engine.SyncRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.SyncRequest(nil), f.requests...)
}

func (f *fakeAPI) Status(context.Context) (engine.Status, error) {
	f.count("Status")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

func (f *fakeAPI) Devices(_ context.Context, q engine.DeviceQuery) ([]engine.DeviceRecord, error) {
	f.count("Devices")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.devicesErr != nil {
		return nil, f.devicesErr
	}
	var out []engine.DeviceRecord
	for i := range f.devices {
		if q.Filter.Match(&f.devices[i]) {
			out = append(out, f.devices[i])
		}
	}
	return out, nil
}

func (f *fakeAPI) Device(_ context.Context, key engine.DeviceKey) (*engine.DeviceDetail, error) {
	f.count("Device")
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.devices {
		if f.devices[i].Key() == key {
			return &engine.DeviceDetail{Record: f.devices[i]}, nil
		}
	}
	return nil, fmt.Errorf("device %s: %w", key, engine.ErrNotFound)
}

func (f *fakeAPI) Runs(_ context.Context, limit int) ([]engine.Run, error) {
	f.count("Runs")
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Run(nil), f.runs[:min(limit, len(f.runs))]...), nil
}

func (f *fakeAPI) Journal(context.Context, engine.JournalQuery) ([]engine.JournalEntry, error) {
	f.count("Journal")
	return nil, nil
}

func (f *fakeAPI) Sync(ctx context.Context, req engine.SyncRequest) (*engine.RunReport, error) {
	f.count("Sync")
	f.mu.Lock()
	f.requests = append(f.requests, req)
	n := len(f.runs) + 1
	gate := f.gate
	f.mu.Unlock()

	run := engine.Run{ID: fmt.Sprintf("run-%d", n), Kind: req.Kind, Trigger: req.Trigger,
		Status: engine.StatusRunning, Started: at(-30 * time.Second)}
	started := run // events carry copies, as the engine's do
	f.emit(engine.Event{Kind: engine.EventRunStarted, Run: &started})
	f.emit(engine.Event{Kind: engine.EventPhase, Progress: &engine.Progress{Run: run, Phase: engine.PhaseObserveExchange}})
	f.emit(engine.Event{Kind: engine.EventProgress, Progress: &engine.Progress{Run: run, Phase: engine.PhaseApply, Done: 1, Total: 2}})
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	run.Finished = fixedNow
	run.Status = engine.StatusSucceeded
	if req.DryRun {
		run.Status = engine.StatusDryRun
	}
	run.Counts = engine.Counts{EASDevices: 8, ChangesPlanned: 2, ChangesApplied: 2, NotificationsSent: 1}
	f.mu.Lock()
	f.runs = append([]engine.Run{run}, f.runs...)
	f.status.LastRun = &f.runs[0]
	f.mu.Unlock()
	finished := run
	f.emit(engine.Event{Kind: engine.EventRunFinished, Run: &finished})
	return &engine.RunReport{Run: run}, nil
}

func (f *fakeAPI) Subscribe(ctx context.Context) (<-chan engine.Event, error) {
	f.count("Subscribe")
	ch := make(chan engine.Event, 64)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, ch)
		close(ch)
		f.mu.Unlock()
	}()
	return ch, nil
}

// emit sends an event to every subscriber with room for it, as the engine does.
func (f *fakeAPI) emit(ev engine.Event) {
	if ev.Time.IsZero() {
		ev.Time = fixedNow
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

var _ engine.API = (*fakeAPI)(nil)

// harness drives a Model as a tea.Program would, synchronously: commands
// run in goroutines and their messages come back through one channel, so a
// command that waits (for an event, a tick) just stays pending.
type harness struct {
	t    testing.TB
	m    *Model
	msgs chan tea.Msg
	done chan struct{}
}

// newHarness returns a model of api at width×height, not yet started.
func newHarness(t testing.TB, api engine.API, opts Options, width, height int) *harness {
	t.Helper()
	if opts.Now == nil {
		opts.Now = clock
	}
	if opts.Title == "" {
		opts.Title = "easgate demo"
	}
	m := New(api, opts)
	m.statusEvery = 0
	m.actor = "tester"
	h := &harness{t: t, m: m, msgs: make(chan tea.Msg, 1024), done: make(chan struct{})}
	t.Cleanup(func() {
		m.cancel()
		close(h.done)
	})
	h.send(tea.WindowSizeMsg{Width: width, Height: height})
	return h
}

// start runs Init and waits until every view and the overview have loaded
// and the event stream is open.
func (h *harness) start() *harness {
	h.t.Helper()
	h.run(h.m.Init())
	h.until("loaded", func(m *Model) bool {
		for _, v := range m.views {
			if _, ok := v.Count(); !ok {
				return false
			}
		}
		return m.header.loaded && m.events != nil
	})
	return h
}

// run executes cmd in the background and queues what it returns.
func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		if batch, ok := msg.(tea.BatchMsg); ok {
			for _, c := range batch {
				h.run(c)
			}
			return
		}
		if msg == nil {
			return
		}
		select {
		case h.msgs <- msg:
		case <-h.done:
		}
	}()
}

// send delivers msg to the model and runs the command it returns.
func (h *harness) send(msg tea.Msg) {
	_, cmd := h.m.Update(msg)
	h.run(cmd)
}

// key delivers key presses, named as tea's String() names them.
func (h *harness) key(names ...string) {
	for _, n := range names {
		h.send(keyPress(n))
	}
}

// until delivers queued messages until cond holds. Spinner ticks are
// dropped so the rendering stays deterministic.
func (h *harness) until(what string, cond func(*Model) bool) {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond(h.m) {
		select {
		case msg := <-h.msgs:
			if _, tick := msg.(spinner.TickMsg); tick {
				continue
			}
			h.send(msg)
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; screen:\n%s", what, h.screen())
		}
	}
}

// screen is the rendered screen without colour or attributes.
func (h *harness) screen() string { return ansi.Strip(h.m.View().Content) }

// keyPress builds the key press tea reports for a key name.
func keyPress(name string) tea.KeyPressMsg {
	switch name {
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "home":
		return tea.KeyPressMsg{Code: tea.KeyHome}
	case "end":
		return tea.KeyPressMsg{Code: tea.KeyEnd}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	}
	r := []rune(name)
	return tea.KeyPressMsg{Code: r[0], Text: name}
}

// displayWidth is how many cells s takes on a terminal.
func displayWidth(s string) int { return ansi.StringWidth(s) }

// inPhase is a harness condition: a run is under way in phase.
func inPhase(phase string) func(*Model) bool {
	return func(m *Model) bool { return m.progress != nil && m.progress.Phase == phase }
}

// keyPressCtrl is ctrl and a letter.
func keyPressCtrl(r rune) tea.KeyPressMsg { return tea.KeyPressMsg{Code: r, Mod: tea.ModCtrl} }
