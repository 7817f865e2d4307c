package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// view is one screen of the console under the header: a component with its
// own Init/Update/View, size and key help. Views load their own data with
// commands and ignore messages that are not theirs.
type view interface {
	// Init returns the command that loads the view's data.
	Init() tea.Cmd
	// Update handles a message: its data arriving, or a key while the view
	// is active.
	Update(msg tea.Msg) tea.Cmd
	// View renders the view in exactly the height it was given.
	View() string
	// SetSize gives the view its width and height in cells.
	SetSize(width, height int)
	// Refresh re-reads the view's data; a refresh asked for while one is
	// under way runs once more after it, never twice at once.
	Refresh() tea.Cmd
	// Title names the view in the tab line.
	Title() string
	// Count is how many rows the view holds, and whether it has loaded.
	Count() (n int, loaded bool)
	// Capturing reports whether the view wants every key (text input).
	Capturing() bool
	// HelpKeys returns the view's keys for the help bar and the full help.
	HelpKeys() (short []key.Binding, full [][]key.Binding)
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
