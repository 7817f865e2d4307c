package tui

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// Options configure the console.
type Options struct {
	// ReadOnly shows the READ-ONLY badge, hides actions that change
	// Exchange or the store, and makes every sync a dry run.
	ReadOnly bool
	// Title is the header's and the terminal window's title, e.g.
	// "easgate demo"; empty means "easgate".
	Title string
	// Now is the console's clock; nil means time.Now. Times show in the
	// location of its result, so a test passes a fixed time in UTC.
	Now func() time.Time
	// Mouse turns on the mouse: the wheel scrolls, a click picks a tab or
	// a row. Off by default, so that the terminal's own text selection
	// works.
	Mouse bool

	// exportDir is where CSV exports go; "" is the working directory.
	exportDir string
}

// Run runs the console on the terminal in the alternate screen until the
// user quits or ctx ends, and leaves the terminal as it found it. Both ways
// of ending return nil; an error means the terminal could not be driven.
// Nothing else may write to stdout or stderr meanwhile.
func Run(ctx context.Context, api engine.API, opts Options) error {
	return run(ctx, api, opts)
}

// run is Run with extra program options: tests give it a fake terminal.
func run(ctx context.Context, api engine.API, opts Options, extra ...tea.ProgramOption) error {
	m := newModel(ctx, api, opts)
	defer m.cancel()
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, extra...)...)
	_, err := p.Run()
	switch {
	case err == nil, errors.Is(err, tea.ErrInterrupted):
		return nil
	case ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled):
		return nil
	}
	return fmt.Errorf("run console: %w", err)
}
