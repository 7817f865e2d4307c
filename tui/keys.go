package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key the console answers to.
type keyMap struct {
	// Moving in a table.
	up       key.Binding
	down     key.Binding
	pageUp   key.Binding
	pageDown key.Binding
	top      key.Binding
	bottom   key.Binding

	// Filtering a table.
	filter      key.Binding // start typing a filter
	clearFilter key.Binding
	acceptInput key.Binding // keep the typed filter and go back to the table
	deleteChar  key.Binding
	clearInput  key.Binding

	// Switching views.
	nextView key.Binding
	prevView key.Binding
	view1    key.Binding
	view2    key.Binding
	view3    key.Binding

	// Actions.
	sync    key.Binding
	refresh key.Binding

	// The console.
	help key.Binding
	quit key.Binding
}

// defaultKeys returns the key map. In read-only mode `s` asks for a dry run,
// and its help says so.
func defaultKeys(readOnly bool) *keyMap {
	k := &keyMap{
		up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		pageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		pageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		top:      key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "first row")),
		bottom:   key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "last row")),

		filter:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		clearFilter: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		acceptInput: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		deleteChar:  key.NewBinding(key.WithKeys("backspace", "ctrl+h"), key.WithHelp("⌫", "delete")),
		clearInput:  key.NewBinding(key.WithKeys("ctrl+u"), key.WithHelp("ctrl+u", "clear")),

		nextView: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next view")),
		prevView: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "prev view")),
		view1:    key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "unmerged")),
		view2:    key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "blocked")),
		view3:    key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "sync runs")),

		sync:    key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "full sync")),
		refresh: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reload")),

		help: key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		quit: key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
	if readOnly {
		k.sync.SetHelp("s", "dry-run sync")
	}
	return k
}

// helpKeys is what the help bar shows: the console's keys and the active
// view's, grouped into columns for the full help.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

// ShortHelp returns the bindings of the one-line help bar.
func (h helpKeys) ShortHelp() []key.Binding { return h.short }

// FullHelp returns the columns of the full help.
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }
