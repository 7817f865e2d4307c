package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// readTimeout bounds one read from the engine, so that a hung control socket
// shows as an error instead of a view that never refreshes again.
const readTimeout = 30 * time.Second

// runsLimit is how many runs the Sync runs view reads.
const runsLimit = 500

// env is what the views share: the engine, the context its calls run in,
// the clock, the styles and the keys.
type env struct {
	ctx    context.Context
	api    engine.API
	now    func() time.Time
	styles *styles
	keys   *keyMap
}

// statusMsg carries the engine's overview. gen is the console's progress
// generation when it was asked for: an overview asked for before the newest
// progress event must not end that run.
type statusMsg struct {
	status engine.Status
	gen    uint64
	err    error
}

// viewID names a view.
type viewID int

// The views, in tab order.
const (
	viewUnmerged viewID = iota
	viewBlocked
	viewRuns
	viewCount
)

// devicesMsg carries the device records a device view asked for, with each
// record's filter text, computed off the UI goroutine.
type devicesMsg struct {
	view   viewID
	rows   []engine.DeviceRecord
	search []string
	err    error
}

// runsMsg carries the run history, newest first, with each run's filter text.
type runsMsg struct {
	runs   []engine.Run
	search []string
	err    error
}

// subscribedMsg carries the engine's event stream.
type subscribedMsg struct {
	events <-chan engine.Event
	err    error
}

// eventMsg is one engine event.
type eventMsg struct{ ev engine.Event }

// eventsClosedMsg says the event stream ended.
type eventsClosedMsg struct{}

// resubscribeMsg asks for the event stream again after it ended or failed.
type resubscribeMsg struct{}

// syncDoneMsg says a sync the console asked for has ended.
type syncDoneMsg struct {
	report *engine.RunReport
	err    error
}

// statusTickMsg asks for a fresh overview (server health changes without
// events).
type statusTickMsg struct{}

// fetchStatus reads the engine's overview.
func fetchStatus(e *env, gen uint64) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		st, err := e.api.Status(ctx)
		if err != nil {
			return statusMsg{gen: gen, err: fmt.Errorf("read status: %w", err)}
		}
		return statusMsg{status: st, gen: gen}
	}
}

// fetchDevices reads the device records of one or more filters, merges them
// in the engine's order (mailbox, then device ID), and computes each one's
// filter text.
func fetchDevices(e *env, v viewID, search func(*engine.DeviceRecord) string, filters ...engine.DeviceFilter) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		var rows []engine.DeviceRecord
		for _, f := range filters {
			recs, err := e.api.Devices(ctx, engine.DeviceQuery{Filter: f})
			if err != nil {
				return devicesMsg{view: v, err: fmt.Errorf("read %s devices: %w", f, err)}
			}
			rows = mergeRecords(rows, recs)
		}
		texts := make([]string, len(rows))
		for i := range rows {
			texts[i] = search(&rows[i])
		}
		return devicesMsg{view: v, rows: rows, search: texts}
	}
}

// mergeRecords merges two record lists sorted by mailbox then device ID.
func mergeRecords(a, b []engine.DeviceRecord) []engine.DeviceRecord {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]engine.DeviceRecord, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if recordLess(&b[0], &a[0]) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// recordLess orders records by mailbox then device ID, ignoring case as
// Exchange does.
func recordLess(x, y *engine.DeviceRecord) bool {
	if c := compareFold(x.Mailbox, y.Mailbox); c != 0 {
		return c < 0
	}
	return compareFold(x.DeviceID, y.DeviceID) < 0
}

// compareFold compares two strings ignoring case.
func compareFold(a, b string) int {
	if strings.EqualFold(a, b) {
		return 0
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// fetchRuns reads the run history.
func fetchRuns(e *env) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		runs, err := e.api.Runs(ctx, runsLimit)
		if err != nil {
			return runsMsg{err: fmt.Errorf("read sync runs: %w", err)}
		}
		texts := make([]string, len(runs))
		for i := range runs {
			texts[i] = runSearch(&runs[i])
		}
		return runsMsg{runs: runs, search: texts}
	}
}

// subscribe opens the engine's event stream; it ends with the console's
// context.
func subscribe(e *env) tea.Cmd {
	return func() tea.Msg {
		ch, err := e.api.Subscribe(e.ctx)
		if err != nil {
			return subscribedMsg{err: fmt.Errorf("subscribe to engine events: %w", err)}
		}
		return subscribedMsg{events: ch}
	}
}

// waitForEvent waits for the next engine event. The console re-arms it after
// each event, so exactly one is waiting at a time.
func waitForEvent(ch <-chan engine.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		return eventMsg{ev: ev}
	}
}

// runSync asks the engine for a run and waits for it to end.
func runSync(e *env, req engine.SyncRequest) tea.Cmd {
	return func() tea.Msg {
		rep, err := e.api.Sync(e.ctx, req)
		if err != nil {
			return syncDoneMsg{err: fmt.Errorf("%s sync: %w", req.Kind, err)}
		}
		return syncDoneMsg{report: rep}
	}
}

// after delivers msg once d has passed.
func after(d time.Duration, msg tea.Msg) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return msg })
}
