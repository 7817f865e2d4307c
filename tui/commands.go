package tui

import (
	"context"
	"fmt"
	"slices"
	"time"

	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// readTimeout bounds one read from the engine, so that a hung control socket
// shows as an error instead of a view that never refreshes again.
const readTimeout = 30 * time.Second

// actionTimeout bounds one admin action (a wipe, a resend): they reach
// Exchange or a mail server, which may be slow but not forever.
const actionTimeout = 5 * time.Minute

// Limits of what the console reads at once.
const (
	runsLimit    = 500    // Sync runs
	journalLimit = 10_000 // Journal: the newest entries
	logsLimit    = 2_000  // Log: the newest lines
)

// Event coalescing: after an event arrives, the console waits this long for
// more (or until it holds maxBatch) and handles them as one message, so a
// sync that reports progress thousands of times a second costs a few
// frames a second.
const (
	coalesceWindow = 25 * time.Millisecond
	maxBatch       = 4096
)

// env is what the views share: the engine, the context its calls run in,
// the clock, the styles, the keys and the engine's latest overview.
type env struct {
	ctx       context.Context
	api       engine.API
	now       func() time.Time
	styles    *styles
	keys      *keyMap
	shared    *shared
	exportDir string // where CSV exports go; "" is the working directory
}

// shared is the engine's state as the console last heard it, read by the
// header, the Overview and the Plan view.
type shared struct {
	status   engine.Status
	loaded   bool // status has been read at least once
	readOnly bool // the console was started read-only
	progress *engine.Progress
	phases   []phaseMark // the phases of the run under way, or of the last one seen
	phaseRun string      // the run phases belong to
}

// phaseMark is when a phase of a run started and, once the next began,
// ended.
type phaseMark struct {
	name    string
	started time.Time
	ended   time.Time
}

// readOnly reports whether the console may only look.
func (s *shared) isReadOnly() bool { return s.readOnly || s.status.ReadOnly }

// statusMsg carries the engine's overview. gen is the console's progress
// generation when it was asked for: an overview asked for before the newest
// progress event must not end that run. plan is the held plan's rows, when
// the held plan is not the one the console already shows.
type statusMsg struct {
	status engine.Status
	gen    uint64
	plan   *planData
	err    error
}

// subscribedMsg carries the engine's event stream.
type subscribedMsg struct {
	events <-chan engine.Event
	err    error
}

// eventsMsg is a batch of engine events, oldest first. closed says the
// stream ended after them.
type eventsMsg struct {
	evs    []engine.Event
	closed bool
}

// eventsClosedMsg says the event stream ended.
type eventsClosedMsg struct{}

// resubscribeMsg asks for the event stream again after it ended or failed.
type resubscribeMsg struct{}

// syncDoneMsg says a sync (or an approval) the console asked for has ended.
type syncDoneMsg struct {
	req    engine.SyncRequest
	report *engine.RunReport
	plan   *planData // the report's plan as rows, for the Plan view
	err    error
}

// statusTickMsg asks for a fresh overview (server health changes without
// events).
type statusTickMsg struct{}

// logTickMsg asks for fresh log lines while the Log view shows.
type logTickMsg struct{}

// actionDoneMsg says an admin action ended: text says what was done.
type actionDoneMsg struct {
	text string
	err  error
	gone engine.DeviceKey // a device that no longer exists: its page closes
}

// fetchStatus reads the engine's overview, and turns a held plan the
// console does not show yet (shownPlan is the ID it shows) into rows.
func fetchStatus(e *env, gen uint64, shownPlan string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		st, err := e.api.Status(ctx)
		if err != nil {
			return statusMsg{gen: gen, err: fmt.Errorf("read status: %w", err)}
		}
		msg := statusMsg{status: st, gen: gen}
		if p := st.HeldPlan; p != nil && p.ID != shownPlan {
			// Status carries only a summary; the run's detail has the plan.
			// A plan that cannot be read leaves the Plan tab as it is; the
			// next status read tries again.
			if d, err := e.api.RunDetail(ctx, p.ID); err == nil && d.Plan != nil {
				msg.plan = newPlanData(d.Plan, true)
			}
		}
		return msg
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

// waitForEvents waits for the next engine event and gathers those that
// follow within coalesceWindow. The console re-arms it after each batch,
// so exactly one is waiting at a time.
func waitForEvents(ch <-chan engine.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		evs := []engine.Event{ev}
		timer := time.NewTimer(coalesceWindow)
		defer timer.Stop()
		for len(evs) < maxBatch {
			select {
			case ev, ok := <-ch:
				if !ok {
					return eventsMsg{evs: evs, closed: true}
				}
				evs = append(evs, ev)
			case <-timer.C:
				return eventsMsg{evs: evs}
			}
		}
		return eventsMsg{evs: evs}
	}
}

// runSync asks the engine for a run (or applies the held plan, when
// approve names it) and waits for it to end.
func runSync(e *env, req engine.SyncRequest, approve *engine.PlanRequest) tea.Cmd {
	return func() tea.Msg {
		var rep *engine.RunReport
		var err error
		if approve != nil {
			rep, err = e.api.Approve(e.ctx, *approve)
			if err != nil {
				return syncDoneMsg{req: req, err: fmt.Errorf("approve plan %s: %w", approve.PlanID, err)}
			}
		} else {
			rep, err = e.api.Sync(e.ctx, req)
			if err != nil {
				return syncDoneMsg{req: req, err: fmt.Errorf("%s sync: %w", req.Kind, err)}
			}
		}
		msg := syncDoneMsg{req: req, report: rep}
		if rep != nil && rep.Plan != nil && (rep.Run.Status == engine.StatusDryRun || rep.Run.Status == engine.StatusBraked) {
			msg.plan = newPlanData(rep.Plan, rep.Run.Status == engine.StatusBraked)
		}
		return msg
	}
}

// cancelSync asks the engine to stop the running sync.
func cancelSync(e *env, actor string) tea.Cmd {
	return action(e, "cancel requested: the sync stops after the changes in flight", func(ctx context.Context) error {
		if err := e.api.Cancel(ctx, actor); err != nil {
			return fmt.Errorf("cancel sync: %w", err)
		}
		return nil
	})
}

// action runs an admin action and reports its end; done is the status
// line's text when it succeeds.
func action(e *env, done string, f func(ctx context.Context) error) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, actionTimeout)
		defer cancel()
		if err := f(ctx); err != nil {
			return actionDoneMsg{err: err}
		}
		return actionDoneMsg{text: done}
	}
}

// after delivers msg once d has passed.
func after(d time.Duration, msg tea.Msg) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return msg })
}

// reversed returns a copy of s in reverse order: the engine lists journal
// and log entries oldest first, the console newest first.
func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}
