package tui

import (
	"image/color"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// theme is the console's palette, by meaning. It uses the terminal's own 16
// ANSI colours so that it follows the user's light or dark scheme. Nothing
// outside this file names a colour.
type theme struct {
	accent color.Color // the title, the active tab, running things
	muted  color.Color // secondary text, hints, separators
	ok     color.Color // allowed, succeeded, reachable
	warn   color.Color // quarantined, braked, cooling down
	bad    color.Color // blocked, failed, unreachable
}

// defaultTheme is the palette the console ships with.
func defaultTheme() theme {
	return theme{
		accent: lipgloss.Cyan,
		muted:  lipgloss.BrightBlack,
		ok:     lipgloss.Green,
		warn:   lipgloss.Yellow,
		bad:    lipgloss.Red,
	}
}

// tone is the meaning of a piece of text, which the styles turn into a look.
type tone int

// Tones.
const (
	toneNormal tone = iota
	toneMuted
	toneAccent
	toneOK
	toneWarn
	toneBad
)

// level is how serious a status line message is.
type level int

// Status line levels.
const (
	levelInfo level = iota
	levelWarn
	levelError
)

// styles are every look the console uses, built from a theme. Each one that
// carries meaning also sets an attribute (bold, reverse, underline), so the
// console stays readable where colour is off (NO_COLOR, a dumb terminal):
// the colour profile drops colours but keeps attributes.
type styles struct {
	title       lipgloss.Style
	badge       lipgloss.Style // READ-ONLY
	label       lipgloss.Style // "Exchange", "Last run"
	tabActive   lipgloss.Style
	tabInactive lipgloss.Style
	tableHeader lipgloss.Style
	selected    lipgloss.Style // the cursor row
	statusInfo  lipgloss.Style
	statusWarn  lipgloss.Style
	statusError lipgloss.Style
	footer      lipgloss.Style // the table's position and filter line
	heading     lipgloss.Style // a section title in a page
	helpKey     lipgloss.Style // a key in the full help
	dialog      lipgloss.Style // a dialog's frame
	danger      lipgloss.Style // a dangerous dialog's frame
	button      lipgloss.Style
	buttonFocus lipgloss.Style
	field       lipgloss.Style // a text input

	muted  lipgloss.Style
	accent lipgloss.Style
	ok     lipgloss.Style
	warn   lipgloss.Style
	bad    lipgloss.Style

	help help.Styles
}

// newStyles builds the styles from a theme.
func newStyles(t theme) *styles {
	s := &styles{
		title:       lipgloss.NewStyle().Bold(true).Foreground(t.accent),
		badge:       lipgloss.NewStyle().Bold(true).Reverse(true).Foreground(t.warn),
		label:       lipgloss.NewStyle().Foreground(t.muted),
		tabActive:   lipgloss.NewStyle().Bold(true).Underline(true).Foreground(t.accent),
		tabInactive: lipgloss.NewStyle().Foreground(t.muted),
		tableHeader: lipgloss.NewStyle().Bold(true),
		selected:    lipgloss.NewStyle().Reverse(true),
		statusInfo:  lipgloss.NewStyle(),
		statusWarn:  lipgloss.NewStyle().Bold(true).Foreground(t.warn),
		statusError: lipgloss.NewStyle().Bold(true).Foreground(t.bad),
		footer:      lipgloss.NewStyle().Foreground(t.muted),
		heading:     lipgloss.NewStyle().Bold(true).Foreground(t.accent),
		helpKey:     lipgloss.NewStyle().Bold(true),
		dialog:      lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(t.accent).Padding(0, 1),
		danger:      lipgloss.NewStyle().Border(lipgloss.ThickBorder()).BorderForeground(t.bad).Padding(0, 1),
		button:      lipgloss.NewStyle(),
		buttonFocus: lipgloss.NewStyle().Bold(true).Reverse(true),
		field:       lipgloss.NewStyle().Underline(true),

		muted:  lipgloss.NewStyle().Foreground(t.muted),
		accent: lipgloss.NewStyle().Foreground(t.accent),
		ok:     lipgloss.NewStyle().Foreground(t.ok),
		warn:   lipgloss.NewStyle().Bold(true).Foreground(t.warn),
		bad:    lipgloss.NewStyle().Bold(true).Foreground(t.bad),
	}
	s.help = help.Styles{
		ShortKey:       lipgloss.NewStyle().Bold(true),
		ShortDesc:      lipgloss.NewStyle().Foreground(t.muted),
		ShortSeparator: lipgloss.NewStyle().Foreground(t.muted),
		Ellipsis:       lipgloss.NewStyle().Foreground(t.muted),
		FullKey:        lipgloss.NewStyle().Bold(true),
		FullDesc:       lipgloss.NewStyle().Foreground(t.muted),
		FullSeparator:  lipgloss.NewStyle().Foreground(t.muted),
	}
	return s
}

// tone returns the style of a tone.
func (s *styles) tone(t tone) lipgloss.Style {
	switch t {
	case toneNormal:
		return lipgloss.Style{}
	case toneMuted:
		return s.muted
	case toneAccent:
		return s.accent
	case toneOK:
		return s.ok
	case toneWarn:
		return s.warn
	case toneBad:
		return s.bad
	}
	return lipgloss.Style{}
}

// status returns the style of a status line level.
func (s *styles) status(l level) lipgloss.Style {
	switch l {
	case levelInfo:
		return s.statusInfo
	case levelWarn:
		return s.statusWarn
	case levelError:
		return s.statusError
	}
	return s.statusInfo
}
