package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key the console answers to. Views never match a key
// string of their own: they match these bindings, so the help always tells
// the truth.
type keyMap struct {
	// Moving in a list or a page.
	up       key.Binding
	down     key.Binding
	pageUp   key.Binding
	pageDown key.Binding
	top      key.Binding
	bottom   key.Binding

	// Lists.
	filter      key.Binding // start typing a filter
	clearFilter key.Binding // esc: clear the filter, the selection, or go back
	acceptInput key.Binding // keep the typed filter and go back to the list
	deleteChar  key.Binding
	clearInput  key.Binding
	sortNext    key.Binding
	sortReverse key.Binding
	selectRow   key.Binding
	selectAll   key.Binding
	open        key.Binding
	export      key.Binding
	copyID      key.Binding

	// Switching views.
	nextView key.Binding
	prevView key.Binding
	views    [tabCount]key.Binding
	back     key.Binding

	// Syncing.
	syncFull  key.Binding
	syncQuick key.Binding
	dryRun    key.Binding
	cancel    key.Binding
	refresh   key.Binding

	// Acting on devices.
	resend     key.Binding
	preview    key.Binding
	link       key.Binding
	unlink     key.Binding
	allow      key.Binding
	block      key.Binding
	clearOver  key.Binding
	remove     key.Binding
	wipe       key.Binding
	statistics key.Binding

	// Plan review.
	approve    key.Binding
	discard    key.Binding
	switchPlan key.Binding

	// Dialogs.
	confirm   key.Binding
	deny      key.Binding
	nextField key.Binding
	prevField key.Binding
	left      key.Binding
	right     key.Binding
	submit    key.Binding

	// The console.
	help key.Binding
	quit key.Binding
}

// defaultKeys returns the key map. In read-only mode the sync keys ask for
// dry runs, and their help says so.
func defaultKeys(readOnly bool) *keyMap {
	k := &keyMap{
		up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		pageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		pageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		top:      key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "first")),
		bottom:   key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "last")),

		filter:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		clearFilter: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear/back")),
		acceptInput: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		deleteChar:  key.NewBinding(key.WithKeys("backspace", "ctrl+h"), key.WithHelp("⌫", "delete")),
		clearInput:  key.NewBinding(key.WithKeys("ctrl+u"), key.WithHelp("ctrl+u", "clear")),
		sortNext:    key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "sort by next column")),
		sortReverse: key.NewBinding(key.WithKeys("O"), key.WithHelp("O", "reverse sort")),
		selectRow:   key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "select")),
		selectAll:   key.NewBinding(key.WithKeys("*"), key.WithHelp("*", "select all shown")),
		open:        key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
		export:      key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "export CSV")),
		copyID:      key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy device ID")),

		nextView: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next view")),
		prevView: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "prev view")),
		back:     key.NewBinding(key.WithKeys("esc", "backspace"), key.WithHelp("esc", "back")),

		syncFull:  key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "full sync")),
		syncQuick: key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "quick sync")),
		dryRun:    key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "dry run")),
		cancel:    key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "cancel sync")),
		refresh:   key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reload")),

		resend:     key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "resend mail")),
		preview:    key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "preview mail")),
		link:       key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "link MDM record")),
		unlink:     key.NewBinding(key.WithKeys("U"), key.WithHelp("U", "unlink")),
		allow:      key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "allow by hand")),
		block:      key.NewBinding(key.WithKeys("b"), key.WithHelp("b", "block by hand ⚠")),
		clearOver:  key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "clear override")),
		remove:     key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "remove partnership ⚠")),
		wipe:       key.NewBinding(key.WithKeys("W"), key.WithHelp("W", "wipe ⚠")),
		statistics: key.NewBinding(key.WithKeys("i"), key.WithHelp("i", "live statistics")),

		approve:    key.NewBinding(key.WithKeys("A"), key.WithHelp("A", "approve plan ⚠")),
		discard:    key.NewBinding(key.WithKeys("X"), key.WithHelp("X", "discard plan")),
		switchPlan: key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "held/dry-run plan")),

		confirm:   key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		deny:      key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "no")),
		nextField: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next")),
		prevField: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous")),
		left:      key.NewBinding(key.WithKeys("left"), key.WithHelp("←", "left")),
		right:     key.NewBinding(key.WithKeys("right"), key.WithHelp("→", "right")),
		submit:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "choose")),

		help: key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		quit: key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
	for i, t := range tabTitles {
		n := string(rune('1' + i))
		k.views[i] = key.NewBinding(key.WithKeys(n), key.WithHelp(n, t))
	}
	if readOnly {
		k.syncFull.SetHelp("s", "dry-run full sync")
		k.syncQuick.SetHelp("S", "dry-run quick sync")
	}
	return k
}

// helpGroup is a titled group of keys in the full help.
type helpGroup struct {
	title string
	keys  []key.Binding
}

// helpKeys is what the help bar shows.
type helpKeys struct {
	short []key.Binding
}

// ShortHelp returns the bindings of the one-line help bar.
func (h helpKeys) ShortHelp() []key.Binding { return h.short }

// FullHelp returns the bar's bindings as one column; the full help is a
// page of its own (see fullHelp).
func (h helpKeys) FullHelp() [][]key.Binding { return [][]key.Binding{h.short} }
