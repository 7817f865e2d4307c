package tui

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// The smallest terminal the console draws in; below it, it says so.
const (
	minWidth  = 40
	minHeight = 12
)

// statusEvery is how often the console re-reads the engine's overview
// between events: server health changes without an event.
const statusEvery = 15 * time.Second

// resubscribeAfter is how long the console waits before asking for the
// event stream again when it ended or failed.
const resubscribeAfter = 3 * time.Second

// Model is the console's root model: the header, the tabs, the view or
// detail page showing, a dialog over it, the status line and the help bar.
// It implements tea.Model; create it with New.
type Model struct {
	env    *env
	cancel context.CancelFunc
	opts   Options
	actor  string
	keys   *keyMap
	styles *styles

	header   header
	overview *overviewView
	unmerged *deviceView
	blocked  *deviceView
	devices  *deviceView
	runs     *runsView
	plan     *planView
	journal  *journalView
	logs     *logsView
	tabs     [tabCount]view
	active   tabID
	stack    []page // detail pages opened over the active tab
	dialog   *dialog
	showHelp bool
	helpPage *scroller
	help     help.Model
	spinner  spinner.Model
	spinning bool

	width, height int
	note          string
	noteLevel     level
	tabSpans      []span2 // where each tab is on the tab line, for the mouse

	events      <-chan engine.Event
	statusLoad  loader
	devLoad     loader
	runsLoad    loader
	journalLoad loader
	logsLoad    loader
	statusEvery time.Duration // 0 disables the periodic overview read (tests)
	logTicking  bool

	syncing     bool // a Sync or Approve call of ours is under way
	syncKind    engine.RunKind
	progressGen uint64
	finishedID  string // the last run whose end the console saw
}

// span2 is a range of columns.
type span2 struct{ from, to int }

// New returns the console's root model for api. Run it with Run, or with a
// tea.Program of your own (tests do).
func New(api engine.API, opts Options) *Model {
	return newModel(context.Background(), api, opts)
}

// newModel builds the model; every engine call it makes ends with ctx or
// when the user quits.
func newModel(parent context.Context, api engine.API, opts Options) *Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Title == "" {
		opts.Title = "easgate"
	}
	ctx, cancel := context.WithCancel(parent)
	st := newStyles(defaultTheme())
	keys := defaultKeys(opts.ReadOnly)
	sh := &shared{readOnly: opts.ReadOnly}
	e := &env{ctx: ctx, api: api, now: opts.Now, styles: st, keys: keys, shared: sh, exportDir: opts.exportDir}
	h := help.New()
	h.Styles = st.help
	m := &Model{
		env: e, cancel: cancel, opts: opts, actor: osUser(), keys: keys, styles: st,
		header:      header{styles: st, shared: sh, title: opts.Title},
		help:        h,
		spinner:     spinner.New(spinner.WithSpinner(spinner.MiniDot)),
		statusEvery: statusEvery,
		helpPage:    newScroller(st, keys, ""),
	}
	m.overview = newOverviewView(e)
	m.unmerged, m.blocked, m.devices = newUnmergedView(e), newBlockedView(e), newAllView(e)
	m.runs, m.plan = newRunsView(e), newPlanView(e)
	m.journal, m.logs = newJournalView(e), newLogsView(e)
	m.tabs = [tabCount]view{m.overview, m.unmerged, m.blocked, m.devices, m.runs, m.plan, m.journal, m.logs}
	m.layout()
	return m
}

// osUser names who runs the console, for the journal's Actor.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"USER", "USERNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "console"
}

// Init reads the overview and the views' data, and subscribes to events.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.refreshStatus(), subscribe(m.env), m.refreshDevices(), m.refreshRuns(), m.refreshJournal(),
		m.refreshLogs()}
	if m.statusEvery > 0 {
		cmds = append(cmds, after(m.statusEvery, statusTickMsg{}))
	}
	return tea.Batch(cmds...)
}

// Update handles keys, the mouse, the engine's answers and events, and
// resizes.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.layout()
	return m, cmd
}

// update is Update without the relayout.
func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return nil
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case tea.MouseWheelMsg:
		return m.handleWheel(msg)
	case tea.MouseClickMsg:
		return m.handleClick(msg)
	case statusMsg:
		return m.handleStatus(msg)
	case devicesMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		}
		return tea.Batch(m.unmerged.take(msg), m.blocked.take(msg), m.devices.take(msg), m.devLoad.done(m.fetchDevices))
	case runsMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		}
		return tea.Batch(m.runs.Update(msg), m.runsLoad.done(m.fetchRuns))
	case journalMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		}
		return tea.Batch(m.journal.Update(msg), m.journalLoad.done(m.fetchJournal))
	case logsMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		}
		return tea.Batch(m.logs.Update(msg), m.logsLoad.done(m.fetchLogs))
	case subscribedMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
			return after(resubscribeAfter, resubscribeMsg{})
		}
		m.events = msg.events
		return waitForEvents(m.events)
	case eventsMsg:
		cmd := m.handleEvents(msg.evs)
		if msg.closed {
			return tea.Batch(cmd, m.update(eventsClosedMsg{}))
		}
		if m.events != nil {
			cmd = tea.Batch(waitForEvents(m.events), cmd)
		}
		return cmd
	case eventsClosedMsg:
		m.events = nil
		if m.env.ctx.Err() != nil {
			return nil
		}
		m.setNote("lost the engine's event stream: reconnecting", levelWarn)
		return after(resubscribeAfter, resubscribeMsg{})
	case resubscribeMsg:
		return tea.Batch(subscribe(m.env), m.refreshAll())
	case syncDoneMsg:
		return m.handleSyncDone(msg)
	case statusTickMsg:
		return tea.Batch(m.refreshStatus(), after(m.statusEvery, statusTickMsg{}))
	case logTickMsg:
		if m.current() != view(m.logs) {
			m.logTicking = false
			return nil
		}
		return tea.Batch(m.refreshLogs(), after(logsEvery, logTickMsg{}))
	case actionDoneMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		} else {
			m.setNote(msg.text, levelInfo)
		}
		if msg.gone != "" {
			m.dropPages(msg.gone)
		}
		return m.refreshAll()
	case previewMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
			return nil
		}
		m.setNote("", levelInfo)
		m.dialog = m.previewDialog(msg)
		return nil
	case candidatesMsg:
		switch {
		case msg.err != nil:
			m.setNote(msg.err.Error(), levelError)
		case len(msg.cands) == 0:
			m.setNote("no MDM record of "+clean(msg.rec.Mailbox)+" can be linked: the user has none, or each is linked already", levelWarn)
		default:
			m.setNote("", levelInfo)
			m.dialog = m.linkDialog(msg)
		}
		return nil
	case resentMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		} else {
			text, lvl := resendSummary(msg.results)
			m.setNote(text, lvl)
		}
		return m.refreshAll()
	case exportedMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		} else {
			m.setNote(fmt.Sprintf("exported %s rows to %s", count(msg.rows), msg.file), levelInfo)
		}
		return nil
	case spinner.TickMsg:
		if !m.running() {
			m.spinning = false
			return nil
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return cmd
	}
	// Data for a page (a detail, statistics) or a sorted order.
	var cmds []tea.Cmd
	for _, p := range m.stack {
		cmds = append(cmds, p.Update(msg))
	}
	switch msg.(type) {
	case sortedMsg, filteredMsg:
		for _, v := range m.tabs {
			cmds = append(cmds, v.Update(msg))
		}
	}
	return tea.Batch(cmds...)
}

// current is the view on screen: the top detail page, else the active tab.
func (m *Model) current() view {
	if n := len(m.stack); n > 0 {
		return m.stack[n-1]
	}
	return m.tabs[m.active]
}

// handleKey acts on a key press: a dialog or an open text input gets every
// key; then the console's own keys; then the device and plan actions; the
// rest goes to the view.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	if k.String() == "ctrl+c" {
		return m.quit()
	}
	if m.dialog != nil {
		cmd, done := m.dialog.Update(k)
		if done {
			m.dialog = nil
		}
		return cmd
	}
	if m.showHelp {
		switch {
		case key.Matches(k, m.keys.help), k.String() == "esc":
			m.showHelp = false
		case key.Matches(k, m.keys.quit):
			return m.quit()
		default:
			return m.helpPage.Update(k)
		}
		return nil
	}
	v := m.current()
	if v.Capturing() {
		return v.Update(k)
	}
	keys := m.keys
	switch {
	case key.Matches(k, keys.quit):
		return m.quit()
	case key.Matches(k, keys.help):
		m.showHelp = true
		m.helpPage.offset = 0
		return nil
	case k.String() == "esc":
		if !v.Escape() && len(m.stack) > 0 {
			m.stack = m.stack[:len(m.stack)-1]
		}
		return nil
	case key.Matches(k, keys.back) && len(m.stack) > 0:
		m.stack = m.stack[:len(m.stack)-1]
		return nil
	case key.Matches(k, keys.nextView):
		return m.setActive((m.active + 1) % tabCount)
	case key.Matches(k, keys.prevView):
		return m.setActive((m.active + tabCount - 1) % tabCount)
	case key.Matches(k, keys.syncFull):
		return m.startSync(engine.RunFull, false)
	case key.Matches(k, keys.syncQuick):
		return m.startSync(engine.RunQuick, false)
	case key.Matches(k, keys.dryRun):
		return m.startSync(engine.RunFull, true)
	case key.Matches(k, keys.cancel):
		return m.cancelSync()
	case key.Matches(k, keys.refresh):
		m.setNote("reloading…", levelInfo)
		return m.refreshAll()
	}
	for i, b := range keys.views {
		if key.Matches(k, b) {
			return m.setActive(tabID(i))
		}
	}
	if key.Matches(k, keys.open) {
		if o, ok := v.(opener); ok {
			if p := o.open(m.env); p != nil {
				m.stack = append(m.stack, p)
				m.layout()
				return p.load()
			}
		}
		return nil
	}
	if key.Matches(k, keys.export) {
		if x, ok := v.(exporter); ok {
			m.setNote("exporting…", levelInfo)
			return x.export()
		}
	}
	if t, ok := v.(deviceTargets); ok {
		if cmd, done := m.deviceAction(k, t); done {
			return cmd
		}
	}
	if v == view(m.plan) {
		if cmd, done := m.planAction(k); done {
			return cmd
		}
	}
	return v.Update(k)
}

// planAction handles approve and discard in the Plan view.
func (m *Model) planAction(k tea.KeyPressMsg) (tea.Cmd, bool) {
	keys := m.keys
	if !key.Matches(k, keys.approve) && !key.Matches(k, keys.discard) {
		return nil, false
	}
	b := keys.approve
	if key.Matches(k, keys.discard) {
		b = keys.discard
	}
	p := m.plan.heldPlan()
	switch {
	case m.readOnly():
		m.disabled(b, "the console is read-only")
	case p == nil:
		m.disabled(b, "no plan is held by the safety brake (a dry run's plan is never applied)")
	case m.running():
		m.disabled(b, "a sync is running: wait for it to end")
	case key.Matches(k, keys.approve):
		m.dialog = m.approveDialog(p)
	default:
		m.dialog = m.discardDialog(p)
	}
	return nil, true
}

// setActive shows a tab, closing any detail page.
func (m *Model) setActive(t tabID) tea.Cmd {
	m.active = t
	m.stack = nil
	if t == tabLog && !m.logTicking {
		m.logTicking = true
		return tea.Batch(m.refreshLogs(), after(logsEvery, logTickMsg{}))
	}
	return nil
}

// dropPages closes the pages of a device that no longer exists.
func (m *Model) dropPages(k engine.DeviceKey) {
	kept := m.stack[:0]
	for _, p := range m.stack {
		if d, ok := p.(*deviceDetail); ok && d.key == k {
			break
		}
		kept = append(kept, p)
	}
	m.stack = kept
}

// quit ends the console and every engine call it has under way.
func (m *Model) quit() tea.Cmd {
	m.cancel()
	return tea.Quit
}

// readOnly reports whether the console may only look.
func (m *Model) readOnly() bool { return m.env.shared.isReadOnly() }

// running reports whether a run is under way, ours or the engine's own.
func (m *Model) running() bool { return m.syncing || m.env.shared.progress != nil }

// startSync asks the engine for a run, unless one is under way: then it
// says so instead of queueing another behind it. In read-only mode every
// run is a dry run.
func (m *Model) startSync(kind engine.RunKind, dry bool) tea.Cmd {
	if m.running() {
		what := "a sync is already running"
		if p := m.env.shared.progress; p != nil {
			what += " (" + progressText(p) + ")"
		}
		m.setNote(what+": wait for it to end, or x cancels it", levelWarn)
		return nil
	}
	req := engine.SyncRequest{Kind: kind, Trigger: engine.TriggerManual, DryRun: dry || m.readOnly(), Actor: m.actor}
	m.syncing, m.syncKind = true, kind
	m.setProgress(requested(kind))
	if req.DryRun {
		why := ""
		if m.readOnly() && !dry {
			why = " (read-only)"
		}
		m.setNote(fmt.Sprintf("dry run of a %s sync requested%s: nothing will be applied", kind, why), levelInfo)
	} else {
		m.setNote(string(kind)+" sync requested", levelInfo)
	}
	return tea.Batch(runSync(m.env, req, nil), m.startSpinner())
}

// startApprove applies the held plan as a run.
func (m *Model) startApprove(p *engine.Plan) tea.Cmd {
	m.syncing, m.syncKind = true, p.Kind
	m.setProgress(requested(p.Kind))
	m.setNote("plan "+clean(p.ID)+" approved: applying it", levelInfo)
	req := engine.SyncRequest{Kind: p.Kind, Trigger: engine.TriggerManual, Actor: m.actor, PlanID: p.ID}
	return tea.Batch(runSync(m.env, req, &engine.PlanRequest{PlanID: p.ID, Actor: m.actor}), m.startSpinner())
}

// cancelSync asks the engine to stop the run under way.
func (m *Model) cancelSync() tea.Cmd {
	switch {
	case m.readOnly():
		m.disabled(m.keys.cancel, "the console is read-only")
		return nil
	case !m.running():
		m.disabled(m.keys.cancel, "no sync is running")
		return nil
	}
	m.setNote("cancelling the sync…", levelWarn)
	return cancelSync(m.env, m.actor)
}

// handleSyncDone records the end of our Sync call, and shows a dry run's
// or a held plan in the Plan view. The views refresh here too unless the
// run's end event already made them, since a slow reader can lose events.
func (m *Model) handleSyncDone(msg syncDoneMsg) tea.Cmd {
	m.syncing = false
	m.setProgress(nil)
	if msg.err != nil {
		m.setNote(msg.err.Error(), levelError)
		return m.refreshAll()
	}
	if msg.report == nil {
		return m.refreshAll()
	}
	r := &msg.report.Run
	text, lvl := runSummary(r, msg.report.Plan)
	var cmds []tea.Cmd
	if msg.plan != nil {
		if msg.plan.held {
			cmds = append(cmds, m.plan.setHeld(msg.plan))
		} else {
			cmds = append(cmds, m.plan.setDryRun(msg.plan))
		}
		cmds = append(cmds, m.setActive(tabPlan))
		text += " · the Plan view shows it"
	}
	m.setNote(text, lvl)
	if r.ID != "" && r.ID == m.finishedID {
		return tea.Batch(cmds...)
	}
	m.finishedID = r.ID
	return tea.Batch(append(cmds, m.refreshAll())...)
}

// handleEvents applies a batch of engine events: progress shows the last
// of them (the views take it once per batch, not once per event), and each
// kind of refresh happens at most once.
func (m *Model) handleEvents(evs []engine.Event) tea.Cmd {
	var started, progressed, finished, state bool
	sh := m.env.shared
	var latest *engine.Progress // progress not yet shown
	for _, ev := range evs {
		switch ev.Kind {
		case engine.EventRunStarted:
			p := engine.Progress{}
			switch {
			case ev.Progress != nil:
				p = *ev.Progress
			case ev.Run != nil:
				p.Run = *ev.Run
			}
			latest = &p
			m.markPhase(&p, ev.Time)
			started = true
		case engine.EventPhase, engine.EventProgress:
			if ev.Progress == nil || ev.Progress.Run.ID == m.finishedID {
				continue
			}
			p := *ev.Progress
			latest = &p
			m.markPhase(&p, ev.Time)
			progressed = true
		case engine.EventRunFinished:
			latest = nil
			if ev.Run == nil {
				m.setProgress(nil)
				finished = true
				continue
			}
			r := *ev.Run
			sh.status.LastRun = &r
			if n := len(sh.phases); n > 0 && sh.phaseRun == r.ID && sh.phases[n-1].ended.IsZero() {
				sh.phases[n-1].ended = ev.Time
			}
			if r.ID == m.finishedID {
				continue // our Sync call returned first and refreshed
			}
			m.finishedID = r.ID
			if m.syncing {
				// Another run ended; ours waits behind it and starts next.
				m.setProgress(requested(m.syncKind))
			} else {
				m.setProgress(nil)
			}
			text, lvl := runSummary(&r, nil)
			m.setNote(text, lvl)
			finished = true
		case engine.EventState:
			state = true
		case engine.EventLog:
			switch strings.ToLower(ev.Level) {
			case "error":
				m.setNote(ev.Message, levelError)
			case "warn", "warning":
				m.setNote(ev.Message, levelWarn)
			}
		}
	}
	if latest != nil {
		m.setProgress(latest)
	}
	var cmds []tea.Cmd
	if started || progressed {
		cmds = append(cmds, m.startSpinner())
	}
	switch {
	case finished:
		cmds = append(cmds, m.refreshAll())
	case state:
		cmds = append(cmds, m.refreshStatus(), m.refreshDevices(), m.refreshJournal(), m.refreshPage())
	case started:
		cmds = append(cmds, m.refreshStatus())
	}
	return tea.Batch(cmds...)
}

// markPhase records the phases of the run under way, for the Overview.
func (m *Model) markPhase(p *engine.Progress, at time.Time) {
	sh := m.env.shared
	if p.Run.ID == "" {
		return
	}
	if sh.phaseRun != p.Run.ID {
		sh.phaseRun, sh.phases = p.Run.ID, nil
	}
	if p.Phase == "" {
		return
	}
	n := len(sh.phases)
	if n > 0 && sh.phases[n-1].name == p.Phase {
		return
	}
	if n > 0 && sh.phases[n-1].ended.IsZero() {
		sh.phases[n-1].ended = at
	}
	sh.phases = append(sh.phases, phaseMark{name: p.Phase, started: at})
}

// handleStatus takes a fresh overview. It also heals a lost event: a run the
// overview shows under way appears, and one it no longer shows ends, unless
// progress arrived after the overview was asked for.
func (m *Model) handleStatus(msg statusMsg) tea.Cmd {
	cmds := []tea.Cmd{m.statusLoad.done(m.fetchStatus)}
	if msg.err != nil {
		m.setNote(msg.err.Error(), levelError)
		return tea.Batch(cmds...)
	}
	sh := m.env.shared
	sh.status, sh.loaded = msg.status, true
	if r := sh.status.LastRun; r != nil && m.finishedID == "" {
		m.finishedID = r.ID
	}
	switch {
	case msg.plan != nil:
		cmds = append(cmds, m.plan.setHeld(msg.plan))
	case msg.status.HeldPlan == nil:
		cmds = append(cmds, m.plan.clearHeld())
	}
	run := msg.status.Running
	switch {
	case run != nil && sh.progress == nil && run.Run.ID != m.finishedID:
		p := *run
		m.setProgress(&p)
		cmds = append(cmds, m.startSpinner())
	case run == nil && sh.progress != nil && !m.syncing && m.progressGen == msg.gen:
		m.setProgress(nil)
	}
	return tea.Batch(cmds...)
}

// requested is the progress of a run the console asked for before the
// engine has started it.
func requested(kind engine.RunKind) *engine.Progress {
	return &engine.Progress{Run: engine.Run{Kind: kind, Trigger: engine.TriggerManual, Status: engine.StatusRunning}}
}

// setProgress records the run under way (nil: none).
func (m *Model) setProgress(p *engine.Progress) {
	m.env.shared.progress = p
	m.progressGen++
	m.runs.setRunning(p)
}

// startSpinner starts the spinner unless it is turning.
func (m *Model) startSpinner() tea.Cmd {
	if m.spinning {
		return nil
	}
	m.spinning = true
	return m.spinner.Tick
}

// setNote puts a message on the status line.
func (m *Model) setNote(text string, l level) { m.note, m.noteLevel = text, l }

// The loads, each coalesced: a refresh asked for while one is under way
// runs once more after it.
func (m *Model) refreshStatus() tea.Cmd  { return m.statusLoad.start(m.fetchStatus) }
func (m *Model) refreshDevices() tea.Cmd { return m.devLoad.start(m.fetchDevices) }
func (m *Model) refreshRuns() tea.Cmd    { return m.runsLoad.start(m.fetchRuns) }
func (m *Model) refreshJournal() tea.Cmd { return m.journalLoad.start(m.fetchJournal) }
func (m *Model) refreshLogs() tea.Cmd    { return m.logsLoad.start(m.fetchLogs) }

// fetchStatus is the command that reads the overview, tagged with the
// progress generation it was asked at.
func (m *Model) fetchStatus() tea.Cmd { return fetchStatus(m.env, m.progressGen, m.plan.shownID()) }

// fetchDevices is the command that reads the device views' records.
func (m *Model) fetchDevices() tea.Cmd {
	return fetchDevices(m.env, []deviceQuery{m.unmerged.query(), m.blocked.query(), m.devices.query()})
}

func (m *Model) fetchRuns() tea.Cmd    { return fetchRuns(m.env) }
func (m *Model) fetchJournal() tea.Cmd { return fetchJournal(m.env) }
func (m *Model) fetchLogs() tea.Cmd    { return fetchLogs(m.env) }

// refreshPage re-reads the detail page showing, if any.
func (m *Model) refreshPage() tea.Cmd {
	if n := len(m.stack); n > 0 {
		return m.stack[n-1].load()
	}
	return nil
}

// refreshAll re-reads the overview, every view's data and the page.
func (m *Model) refreshAll() tea.Cmd {
	cmds := []tea.Cmd{m.refreshStatus(), m.refreshDevices(), m.refreshRuns(), m.refreshJournal(), m.refreshPage()}
	if m.current() == view(m.logs) {
		cmds = append(cmds, m.refreshLogs())
	}
	return tea.Batch(cmds...)
}

// handleWheel scrolls the view under the mouse.
func (m *Model) handleWheel(msg tea.MouseWheelMsg) tea.Cmd {
	if m.dialog != nil || m.showHelp {
		return nil
	}
	n := 3
	if msg.Button == tea.MouseWheelUp {
		n = -3
	}
	if s, ok := m.current().(interface{ wheel(int) }); ok {
		s.wheel(n)
	}
	return nil
}

// handleClick switches tabs on the tab line and moves the cursor in a table.
func (m *Model) handleClick(msg tea.MouseClickMsg) tea.Cmd {
	if m.dialog != nil || m.showHelp || msg.Button != tea.MouseLeft {
		return nil
	}
	if msg.Y == headerHeight {
		for i, s := range m.tabSpans {
			if msg.X >= s.from && msg.X < s.to {
				return m.setActive(tabID(i))
			}
		}
		return nil
	}
	if c, ok := m.current().(interface{ click(int) }); ok {
		c.click(msg.Y - headerHeight - 1)
	}
	return nil
}

// bodyHeight is the lines the view gets: the screen less the header, the
// tab line, the status line and the help bar.
func (m *Model) bodyHeight() int {
	_, h := m.size()
	return max(h-headerHeight-3, 3)
}

// size is the terminal size, 80×24 until the terminal tells.
func (m *Model) size() (int, int) {
	w, h := m.width, m.height
	if w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

// layout gives the header, help and views their sizes.
func (m *Model) layout() {
	w, _ := m.size()
	m.header.width = w
	m.help.SetWidth(w)
	body := m.bodyHeight()
	for _, v := range m.tabs {
		v.SetSize(w, body)
	}
	for _, p := range m.stack {
		p.SetSize(w, body)
	}
	m.helpPage.SetSize(w, body)
}

// View renders the whole screen in the alternate screen buffer.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = clean(m.opts.Title)
	if m.opts.Mouse {
		v.MouseMode = tea.MouseModeCellMotion
	}
	return v
}

// render draws the screen: header, tabs, the view (with a dialog over
// it), the status line and help, cut to the terminal's size.
func (m *Model) render() string {
	w, h := m.size()
	if w < minWidth || h < minHeight {
		return ansi.Truncate(fmt.Sprintf("terminal too small: %d×%d, need %d×%d", w, h, minWidth, minHeight), w, "…")
	}
	now := m.env.now()
	var body string
	if m.showHelp {
		m.helpPage.setHead(m.fullHelp(w))
		body = m.helpPage.View()
	} else {
		body = m.current().View()
	}
	if m.dialog != nil {
		body = overlay(body, m.dialog.View(w, m.bodyHeight()), w, m.bodyHeight())
	}
	parts := []string{
		m.header.View(m.spinner.View(), now),
		m.tabLine(w),
		body,
		m.statusLine(w),
		m.help.View(m.helpKeys()),
	}
	return clip(strings.Join(parts, "\n"), w, h)
}

// tabLine renders the tabs: each view's number, title and row count, the
// active one in brackets so that it shows without colour too. Where the
// line does not fit, the counts and then the titles of the inactive tabs
// give way. (A detail page names itself in its first line.)
func (m *Model) tabLine(w int) string {
	for level := range 4 {
		var b strings.Builder
		spans := make([]span2, 0, tabCount)
		for i, v := range m.tabs {
			title := v.Title()
			text := fmt.Sprintf("%d %s", i+1, title)
			active := tabID(i) == m.active
			switch {
			case active:
				switch n, loaded := v.Count(); {
				case n < 0:
				case !loaded:
					text += " …"
				default:
					text += " " + count(n)
				}
			case level == 0:
				if n, loaded := v.Count(); n >= 0 && loaded {
					text += " " + count(n)
				}
			case level == 2:
				text = fmt.Sprintf("%d %s", i+1, title[:min(3, len(title))])
			case level == 3:
				text = fmt.Sprintf("%d", i+1)
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			from := ansi.StringWidth(b.String())
			if active {
				b.WriteString(m.styles.tabActive.Render("[" + text + "]"))
			} else {
				b.WriteString(m.styles.tabInactive.Render(text))
			}
			spans = append(spans, span2{from: from, to: ansi.StringWidth(b.String())})
		}
		if ansi.StringWidth(b.String()) <= w || level == 3 {
			m.tabSpans = spans
			return ansi.Truncate(b.String(), w, "…")
		}
	}
	return ""
}

// statusLine renders the last message, or the policy in one line when there
// is none.
func (m *Model) statusLine(w int) string {
	if m.note != "" {
		prefix := ""
		switch m.noteLevel {
		case levelError:
			prefix = "Error: "
		case levelWarn:
			prefix = "Warning: "
		case levelInfo:
		}
		return m.styles.status(m.noteLevel).Render(ansi.Truncate(prefix+clean(m.note), w, "…"))
	}
	if p := m.env.shared.status.Policy; p != "" {
		return m.styles.muted.Render(ansi.Truncate("Policy: "+clean(p), w, "…"))
	}
	return ""
}

// clip cuts s to h lines of at most w cells.
func clip(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	return strings.Join(lines, "\n")
}
