package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// tabID names one of the console's top-level views: the ones the number
// keys and tab switch between. Detail pages (a device, a run) open over the
// active tab with enter and close with esc.
type tabID int

// The top-level views, in tab order; key 1 is the first.
const (
	tabOverview tabID = iota
	tabUnmerged
	tabBlocked
	tabDevices
	tabRuns
	tabPlan
	tabJournal
	tabLog
	tabCount
)

// tabTitles name the tabs, in tab order.
var tabTitles = [tabCount]string{"Overview", "Unmerged", "Blocked", "Devices", "Runs", "Plan", "Journal", "Log"}

// view is one screen of the console under the header: a top-level view or
// a detail page. It renders exactly the size it was given, handles its own
// keys and the data messages addressed to it, and ignores the rest. Data
// loads are the root model's business (it coalesces them); a view never
// calls the engine.
type view interface {
	// Update handles a message: its data arriving, or a key while the view
	// is showing.
	Update(msg tea.Msg) tea.Cmd
	// View renders the view in exactly the height it was given.
	View() string
	// SetSize gives the view its width and height in cells.
	SetSize(width, height int)
	// Title names the view in the tab line or the page title.
	Title() string
	// Count is how many rows the view holds (-1: it has no rows to count),
	// and whether its data has arrived.
	Count() (n int, loaded bool)
	// Capturing reports whether the view wants every key (text input).
	Capturing() bool
	// Escape clears what esc clears in the view (a filter, a selection) and
	// reports whether there was anything; when not, esc goes back.
	Escape() bool
	// HelpKeys returns the view's own keys: a few for the help bar and
	// groups for the full help.
	HelpKeys() (short []key.Binding, groups []helpGroup)
}

// opener is a view that opens a detail page on enter.
type opener interface {
	// open returns the page for the row under the cursor, or nil.
	open(e *env) page
}

// page is a detail view opened over a tab: it loads its own data.
type page interface {
	view
	// load returns the command that reads the page's data.
	load() tea.Cmd
}

// deviceTargets is a view whose rows are devices the device actions act on.
type deviceTargets interface {
	// targets returns the device under the cursor (nil if none) and the
	// selected devices (empty when nothing is selected).
	targets() (cursor *engine.DeviceRecord, selected []engine.DeviceRecord)
}

// loader coalesces refreshes: while a load is under way, further requests
// collapse into one more load after it.
type loader struct {
	inFlight bool
	again    bool
}

// start returns the load command, or nil when a load is under way (which
// then runs once more when it ends).
func (l *loader) start(load func() tea.Cmd) tea.Cmd {
	if l.inFlight {
		l.again = true
		return nil
	}
	l.inFlight = true
	return load()
}

// done records that a load ended and returns the follow-up load, if any
// was asked for meanwhile.
func (l *loader) done(load func() tea.Cmd) tea.Cmd {
	l.inFlight = false
	if l.again {
		l.again = false
		return l.start(load)
	}
	return nil
}
