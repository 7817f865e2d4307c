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
	"charm.land/lipgloss/v2"
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

// Model is the console's root model: the header, the views, the status line
// and the help bar. It implements tea.Model; create it with New.
type Model struct {
	env    *env
	cancel context.CancelFunc
	opts   Options
	actor  string
	keys   *keyMap
	styles *styles

	header   header
	views    [viewCount]view
	active   viewID
	help     help.Model
	spinner  spinner.Model
	spinning bool

	width, height int
	note          string
	noteLevel     level

	events      <-chan engine.Event
	statusLoad  loader
	statusEvery time.Duration // 0 disables the periodic overview read (tests)

	syncing     bool             // a Sync call of ours is under way
	progress    *engine.Progress // the run under way, if any
	progressGen uint64           // bumps with every progress change
	finishedID  string           // the last run whose end the console saw
}

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
	e := &env{ctx: ctx, api: api, now: opts.Now, styles: st, keys: keys}
	h := help.New()
	h.Styles = st.help
	sp := spinner.New(spinner.WithSpinner(spinner.MiniDot))
	m := &Model{
		env: e, cancel: cancel, opts: opts, actor: osUser(), keys: keys, styles: st,
		header:      header{styles: st, title: opts.Title, readOnly: opts.ReadOnly},
		help:        h,
		spinner:     sp,
		statusEvery: statusEvery,
	}
	m.views[viewUnmerged] = newUnmergedView(e)
	m.views[viewBlocked] = newBlockedView(e)
	m.views[viewRuns] = newRunsView(e)
	m.layout()
	return m
}

// osUser names who runs the console, for the run record's Actor.
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

// Init reads the overview and every view's data, and subscribes to events.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.refreshStatus(), subscribe(m.env)}
	for _, v := range m.views {
		cmds = append(cmds, v.Init())
	}
	if m.statusEvery > 0 {
		cmds = append(cmds, after(m.statusEvery, statusTickMsg{}))
	}
	return tea.Batch(cmds...)
}

// Update handles keys, the engine's answers and events, and resizes.
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
	case statusMsg:
		return m.handleStatus(msg)
	case devicesMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		}
		return m.views[msg.view].Update(msg)
	case runsMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
		}
		return m.views[viewRuns].Update(msg)
	case subscribedMsg:
		if msg.err != nil {
			m.setNote(msg.err.Error(), levelError)
			return after(resubscribeAfter, resubscribeMsg{})
		}
		m.events = msg.events
		return waitForEvent(m.events)
	case eventMsg:
		var wait tea.Cmd
		if m.events != nil {
			wait = waitForEvent(m.events)
		}
		return tea.Batch(wait, m.handleEvent(msg.ev))
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
	case spinner.TickMsg:
		if !m.running() {
			m.spinning = false
			return nil
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return cmd
	}
	return nil
}

// handleKey acts on a key press: the console's own keys first, unless the
// active view has a text input open; everything else goes to the view.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	v := m.views[m.active]
	if v.Capturing() {
		if k.String() == "ctrl+c" {
			return m.quit()
		}
		return v.Update(k)
	}
	switch {
	case key.Matches(k, m.keys.quit):
		return m.quit()
	case key.Matches(k, m.keys.help):
		m.help.ShowAll = !m.help.ShowAll
	case m.help.ShowAll && k.String() == "esc":
		m.help.ShowAll = false
	case key.Matches(k, m.keys.nextView):
		m.active = (m.active + 1) % viewCount
	case key.Matches(k, m.keys.prevView):
		m.active = (m.active + viewCount - 1) % viewCount
	case key.Matches(k, m.keys.view1):
		m.active = viewUnmerged
	case key.Matches(k, m.keys.view2):
		m.active = viewBlocked
	case key.Matches(k, m.keys.view3):
		m.active = viewRuns
	case key.Matches(k, m.keys.sync):
		return m.startSync()
	case key.Matches(k, m.keys.refresh):
		return m.refreshAll()
	default:
		return v.Update(k)
	}
	return nil
}

// quit ends the console and every engine call it has under way.
func (m *Model) quit() tea.Cmd {
	m.cancel()
	return tea.Quit
}

// readOnly reports whether the console may only look.
func (m *Model) readOnly() bool { return m.opts.ReadOnly || m.header.status.ReadOnly }

// running reports whether a run is under way, ours or the engine's own.
func (m *Model) running() bool { return m.syncing || m.progress != nil }

// startSync asks the engine for a full sync, unless one is under way: then
// it says so instead of queueing another behind it.
func (m *Model) startSync() tea.Cmd {
	if m.running() {
		what := "a sync is already running"
		if m.progress != nil {
			what += " (" + progressText(m.progress) + ")"
		}
		m.setNote(what+": wait for it to end", levelWarn)
		return nil
	}
	req := engine.SyncRequest{Kind: engine.RunFull, Trigger: engine.TriggerManual,
		DryRun: m.readOnly(), Actor: m.actor}
	m.syncing = true
	m.setProgress(requested())
	if req.DryRun {
		m.setNote("dry-run sync requested (read-only: nothing will be applied)", levelInfo)
	} else {
		m.setNote("full sync requested", levelInfo)
	}
	return tea.Batch(runSync(m.env, req), m.startSpinner())
}

// handleSyncDone records the end of our Sync call. The views refresh here
// too unless the run's end event already made them, since a slow reader
// can lose events.
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
	m.setNote(text, lvl)
	if r.ID != "" && r.ID == m.finishedID {
		return nil
	}
	m.finishedID = r.ID
	return m.refreshAll()
}

// handleEvent applies one engine event.
func (m *Model) handleEvent(ev engine.Event) tea.Cmd {
	switch ev.Kind {
	case engine.EventRunStarted:
		p := engine.Progress{}
		switch {
		case ev.Progress != nil:
			p = *ev.Progress
		case ev.Run != nil:
			p.Run = *ev.Run
		}
		m.setProgress(&p)
		return tea.Batch(m.startSpinner(), m.refreshStatus())
	case engine.EventPhase, engine.EventProgress:
		if ev.Progress == nil || ev.Progress.Run.ID == m.finishedID {
			return nil
		}
		p := *ev.Progress
		m.setProgress(&p)
		return m.startSpinner()
	case engine.EventRunFinished:
		if ev.Run == nil {
			m.setProgress(nil)
			return m.refreshAll()
		}
		r := *ev.Run
		m.header.status.LastRun = &r
		if r.ID == m.finishedID {
			return nil // our Sync call returned first and refreshed
		}
		m.finishedID = r.ID
		if m.syncing {
			// Another run ended; ours waits behind it and starts next.
			m.setProgress(requested())
		} else {
			m.setProgress(nil)
		}
		text, lvl := runSummary(&r, nil)
		m.setNote(text, lvl)
		return m.refreshAll()
	case engine.EventState:
		return tea.Batch(m.refreshStatus(), m.views[viewUnmerged].Refresh(), m.views[viewBlocked].Refresh())
	case engine.EventLog:
		switch strings.ToLower(ev.Level) {
		case "error":
			m.setNote(ev.Message, levelError)
		case "warn", "warning":
			m.setNote(ev.Message, levelWarn)
		}
	}
	return nil
}

// handleStatus takes a fresh overview. It also heals a lost event: a run the
// overview shows under way appears, and one it no longer shows ends, unless
// progress arrived after the overview was asked for.
func (m *Model) handleStatus(msg statusMsg) tea.Cmd {
	cmd := m.statusLoad.done(m.fetchStatus)
	if msg.err != nil {
		m.setNote(msg.err.Error(), levelError)
		return cmd
	}
	m.header.setStatus(msg.status)
	if r := m.header.status.LastRun; r != nil && m.finishedID == "" {
		m.finishedID = r.ID
	}
	run := msg.status.Running
	switch {
	case run != nil && m.progress == nil && run.Run.ID != m.finishedID:
		p := *run
		m.setProgress(&p)
		return tea.Batch(cmd, m.startSpinner())
	case run == nil && m.progress != nil && !m.syncing && m.progressGen == msg.gen:
		m.setProgress(nil)
	}
	return cmd
}

// requested is the progress of the full sync the console asked for before
// the engine has started it.
func requested() *engine.Progress {
	return &engine.Progress{Run: engine.Run{Kind: engine.RunFull, Trigger: engine.TriggerManual, Status: engine.StatusRunning}}
}

// setProgress records the run under way (nil: none).
func (m *Model) setProgress(p *engine.Progress) {
	m.progress = p
	m.progressGen++
	m.header.progress = p
	m.views[viewRuns].(*runsView).setRunning(p)
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

// refreshStatus re-reads the overview (coalesced).
func (m *Model) refreshStatus() tea.Cmd { return m.statusLoad.start(m.fetchStatus) }

// fetchStatus is the command that reads the overview, tagged with the
// progress generation it was asked at.
func (m *Model) fetchStatus() tea.Cmd { return fetchStatus(m.env, m.progressGen) }

// refreshAll re-reads the overview and every view.
func (m *Model) refreshAll() tea.Cmd {
	cmds := []tea.Cmd{m.refreshStatus()}
	for _, v := range m.views {
		cmds = append(cmds, v.Refresh())
	}
	return tea.Batch(cmds...)
}

// size is the terminal size, 80×24 until the terminal tells.
func (m *Model) size() (int, int) {
	w, h := m.width, m.height
	if w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

// helpKeys is the help for the active view and the console.
func (m *Model) helpKeys() helpKeys {
	short, full := m.views[m.active].HelpKeys()
	if m.views[m.active].Capturing() {
		return helpKeys{short: short, full: full}
	}
	k := m.keys
	return helpKeys{
		short: append(short, k.nextView, k.sync, k.help, k.quit),
		full: append(full,
			[]key.Binding{k.nextView, k.prevView, k.view1, k.view2, k.view3},
			[]key.Binding{k.sync, k.refresh, k.help, k.quit}),
	}
}

// layout gives the header, help and views their sizes.
func (m *Model) layout() {
	w, h := m.size()
	m.header.width = w
	m.help.SetWidth(w)
	helpLines := 1
	if m.help.ShowAll {
		helpLines = lipgloss.Height(m.help.View(m.helpKeys()))
	}
	body := max(h-m.header.Height()-1-1-helpLines, 3)
	for _, v := range m.views {
		v.SetSize(w, body)
	}
}

// View renders the whole screen in the alternate screen buffer.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = clean(m.opts.Title)
	return v
}

// render draws the screen: header, tabs, the active view, the status line
// and help, cut to the terminal's size.
func (m *Model) render() string {
	w, h := m.size()
	if w < minWidth || h < minHeight {
		return ansi.Truncate(fmt.Sprintf("terminal too small: %d×%d, need %d×%d", w, h, minWidth, minHeight), w, "…")
	}
	now := m.env.now()
	parts := []string{
		m.header.View(m.spinner.View(), now),
		m.tabs(w),
		m.views[m.active].View(),
		m.statusLine(w),
		m.help.View(m.helpKeys()),
	}
	return clip(strings.Join(parts, "\n"), w, h)
}

// tabs renders the tab line: each view's number, title and row count, the
// active one in brackets so that it shows without colour too.
func (m *Model) tabs(w int) string {
	var b strings.Builder
	for i, v := range m.views {
		n, loaded := v.Count()
		c := "…"
		if loaded {
			c = count(n)
		}
		label := fmt.Sprintf("%d %s %s", i+1, v.Title(), c)
		if viewID(i) == m.active {
			b.WriteString(m.styles.tabActive.Render("[" + label + "]"))
		} else {
			b.WriteString(m.styles.tabInactive.Render(" " + label + " "))
		}
		b.WriteString(" ")
	}
	return ansi.Truncate(b.String(), w, "…")
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
	if p := m.header.status.Policy; p != "" {
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
