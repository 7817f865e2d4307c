package tui

import (
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// dialog is a modal box over the view: a question with No and Yes buttons,
// optionally with text fields, a list to pick from, or choices. A
// dangerous dialog (block, wipe, remove, approve) has a heavy red frame and
// its focus starts on No, and enter in a field moves to No: only y, or
// moving to Yes and pressing enter, confirms it.
type dialog struct {
	styles *styles
	keys   *keyMap

	title    string
	danger   bool
	body     []string // plain text (already cleaned); wrapped as drawn
	fields   []*textField
	items    []string // a list to pick one from
	item     int
	choices  []string // options to choose one of
	choice   int
	yesLabel string // "": an information box with only a close button
	noLabel  string
	errText  string
	scroll   int

	focus int
	// onYes acts on the dialog's values; an error keeps it open and says why.
	onYes func(d *dialog) (tea.Cmd, error)

	bodyLines int // body lines on screen at the last draw
}

// textField is a one-line text input in a dialog.
type textField struct {
	label string
	value string
	hint  string
}

// slot kinds: what the focus can be on.
const (
	slotField = iota
	slotItems
	slotChoices
	slotNo
	slotYes
)

// newDialog returns a dialog; the caller adds what it needs and calls start.
func newDialog(st *styles, keys *keyMap, title string, danger bool) *dialog {
	return &dialog{styles: st, keys: keys, title: title, danger: danger, noLabel: "No"}
}

// slots lists the focusable places, in tab order.
func (d *dialog) slots() []int {
	var s []int
	for range d.fields {
		s = append(s, slotField)
	}
	if len(d.items) > 0 {
		s = append(s, slotItems)
	}
	if len(d.choices) > 0 {
		s = append(s, slotChoices)
	}
	s = append(s, slotNo)
	if d.yesLabel != "" {
		s = append(s, slotYes)
	}
	return s
}

// slotAt returns the kind of the focused slot.
func (d *dialog) slotAt() int { return d.slots()[d.focus] }

// indexOf returns the position of the first slot of a kind, or -1.
func (d *dialog) indexOf(kind int) int {
	for i, s := range d.slots() {
		if s == kind {
			return i
		}
	}
	return -1
}

// start puts the focus where it belongs: the first input, else No on a
// dangerous dialog and Yes on a safe one.
func (d *dialog) start() *dialog {
	switch {
	case len(d.fields) > 0 || len(d.items) > 0 || len(d.choices) > 0:
		d.focus = 0
	case d.danger || d.yesLabel == "":
		d.focus = d.indexOf(slotNo)
	default:
		d.focus = d.indexOf(slotYes)
	}
	return d
}

// advance moves the focus on after enter in an input: to No on a dangerous
// dialog, to Yes on a safe one.
func (d *dialog) advance() {
	next := d.focus + 1
	if s := d.slots(); next < len(s) && s[next] == slotNo && !d.danger && d.yesLabel != "" {
		next++
	}
	d.focus = min(next, len(d.slots())-1)
}

// Update handles a key; it returns the command to run and whether the
// dialog is done.
func (d *dialog) Update(k tea.KeyPressMsg) (tea.Cmd, bool) {
	k2 := d.keys
	slot := d.slotAt()
	switch {
	case k.String() == "esc":
		return nil, true
	case key.Matches(k, k2.nextField):
		d.focus = (d.focus + 1) % len(d.slots())
		return nil, false
	case key.Matches(k, k2.prevField):
		d.focus = (d.focus + len(d.slots()) - 1) % len(d.slots())
		return nil, false
	case key.Matches(k, k2.pageDown):
		d.scroll += max(d.bodyLines, 1)
		return nil, false
	case key.Matches(k, k2.pageUp):
		d.scroll = max(d.scroll-max(d.bodyLines, 1), 0)
		return nil, false
	}
	switch slot {
	case slotField:
		f := d.fields[d.focus]
		switch {
		case key.Matches(k, k2.submit):
			d.advance()
		case key.Matches(k, k2.deleteChar):
			if _, size := utf8.DecodeLastRuneInString(f.value); size > 0 {
				f.value = f.value[:len(f.value)-size]
			}
		case key.Matches(k, k2.clearInput):
			f.value = ""
		case k.Text != "" && !k.Mod.Contains(tea.ModCtrl) && !k.Mod.Contains(tea.ModAlt):
			if utf8.RuneCountInString(f.value) < maxFieldRunes {
				f.value += clean(k.Text)
			}
		}
		return nil, false
	case slotItems, slotChoices:
		n, at := len(d.items), &d.item
		if slot == slotChoices {
			n, at = len(d.choices), &d.choice
		}
		switch {
		case key.Matches(k, k2.up), key.Matches(k, k2.left):
			*at = max(*at-1, 0)
		case key.Matches(k, k2.down), key.Matches(k, k2.right):
			*at = min(*at+1, n-1)
		case key.Matches(k, k2.submit):
			if !d.danger && d.yesLabel != "" {
				return d.confirm()
			}
			d.advance()
		case key.Matches(k, k2.confirm) && d.yesLabel != "":
			return d.confirm()
		case key.Matches(k, k2.deny):
			return nil, true
		}
		return nil, false
	}
	// On a button.
	switch {
	case key.Matches(k, k2.left):
		d.focus = max(d.focus-1, d.indexOf(slotNo))
	case key.Matches(k, k2.right):
		d.focus = min(d.focus+1, len(d.slots())-1)
	case key.Matches(k, k2.up):
		d.scroll = max(d.scroll-1, 0)
	case key.Matches(k, k2.down):
		d.scroll++
	case key.Matches(k, k2.submit):
		if slot == slotYes {
			return d.confirm()
		}
		return nil, true
	case key.Matches(k, k2.confirm) && d.yesLabel != "":
		return d.confirm()
	case key.Matches(k, k2.deny):
		return nil, true
	}
	return nil, false
}

// confirm acts on the dialog; a validation error keeps it open.
func (d *dialog) confirm() (tea.Cmd, bool) {
	if d.onYes == nil {
		return nil, true
	}
	cmd, err := d.onYes(d)
	if err != nil {
		d.errText = clean(err.Error())
		return nil, false
	}
	return cmd, true
}

// View renders the dialog in at most width×height cells.
func (d *dialog) View(width, height int) string {
	s := d.styles
	frame := s.dialog
	if d.danger {
		frame = s.danger
	}
	outer := min(max(width-4, 30), 78, width)
	inner := max(outer-frame.GetHorizontalFrameSize(), 10)
	var top, bottom []string
	title := s.heading.Render(cut(clean(d.title), inner))
	if d.danger {
		title = s.bad.Render(cut("⚠ "+clean(d.title), inner))
	}
	top = append(top, title, "")
	for i, f := range d.fields {
		value := f.value
		if d.focus == i {
			value += "▏"
		}
		label := s.label.Render(f.label + ": ")
		room := max(inner-ansi.StringWidth(f.label)-2, 4)
		v := ansi.TruncateLeft(value, max(ansi.StringWidth(value)-room, 0), "…")
		bottom = append(bottom, label+s.field.Render(fit(v, room, false)))
		if f.hint != "" {
			bottom = append(bottom, s.muted.Render(cut("  "+f.hint, inner)))
		}
	}
	focusMark := func(on bool) string {
		if on {
			return "> "
		}
		return "  "
	}
	if len(d.choices) > 0 {
		on := d.slotAt() == slotChoices
		for i, c := range d.choices {
			mark := "( ) "
			if i == d.choice {
				mark = "(•) "
			}
			l := cut(focusMark(on && i == d.choice)+mark+c, inner)
			if on && i == d.choice {
				l = s.buttonFocus.Render(l)
			}
			bottom = append(bottom, l)
		}
	}
	if d.errText != "" {
		bottom = append(bottom, s.bad.Render(cut(d.errText, inner)))
	}
	bottom = append(bottom, "", d.buttons(inner))

	// The items and the body share what is left.
	room := max(height-frame.GetVerticalFrameSize()-len(top)-len(bottom), 2)
	var middle []string
	var body []string
	for _, b := range d.body {
		if b == "" {
			body = append(body, "")
			continue
		}
		body = append(body, strings.Split(ansi.Wrap(b, inner, ""), "\n")...)
	}
	itemRows := 0
	if len(d.items) > 0 {
		itemRows = min(len(d.items), max(room-min(len(body), room/2), 1))
	}
	bodyRows := min(len(body), max(room-itemRows, 0))
	d.bodyLines = bodyRows
	d.scroll = min(d.scroll, max(len(body)-bodyRows, 0))
	if bodyRows > 0 {
		end := d.scroll + bodyRows
		shown := body[d.scroll:end]
		for i, b := range shown {
			if i == len(shown)-1 && end < len(body) {
				b = s.muted.Render(cut("↓ more (pgdn)", inner))
			}
			middle = append(middle, b)
		}
	}
	if itemRows > 0 {
		if len(middle) > 0 {
			middle = append(middle, "")
		}
		on := d.slotAt() == slotItems
		first := min(max(d.item-itemRows+1, 0), max(len(d.items)-itemRows, 0))
		for i := first; i < first+itemRows && i < len(d.items); i++ {
			l := cut(focusMark(i == d.item)+d.items[i], inner)
			if on && i == d.item {
				l = s.buttonFocus.Render(fit(l, inner, false))
			}
			middle = append(middle, l)
		}
	}
	lines := append(append(top, middle...), bottom...)
	return frame.Width(outer).Render(strings.Join(lines, "\n"))
}

// buttons renders No and Yes, right-aligned; the focused one is in
// brackets (and reversed), so it shows without colour too.
func (d *dialog) buttons(width int) string {
	s := d.styles
	btn := func(label string, focused, danger bool) string {
		if focused {
			return s.buttonFocus.Render("[ " + label + " ]")
		}
		if danger {
			return s.bad.Render("  " + label + "  ")
		}
		return s.button.Render("  " + label + "  ")
	}
	slot := d.slotAt()
	no := d.noLabel
	if d.yesLabel == "" && no == "No" {
		no = "Close"
	}
	out := btn(no, slot == slotNo, false)
	if d.yesLabel != "" {
		out += "  " + btn(d.yesLabel, slot == slotYes, d.danger)
	}
	hint := "esc cancels"
	if d.yesLabel != "" {
		hint = "y: " + strings.ToLower(d.yesLabel) + " · esc cancels"
	}
	hint = s.muted.Render(hint)
	gap := width - ansi.StringWidth(out) - ansi.StringWidth(hint)
	if gap < 2 {
		return cut(out, width)
	}
	return hint + strings.Repeat(" ", gap) + out
}

// overlay draws box centred over base, a block of width×height cells.
func overlay(base, box string, width, height int) string {
	lines := strings.Split(base, "\n")
	for len(lines) < height {
		lines = append(lines, "")
	}
	boxLines := strings.Split(box, "\n")
	bw := 0
	for _, l := range boxLines {
		bw = max(bw, ansi.StringWidth(l))
	}
	x := max((width-bw)/2, 0)
	y := max((height-len(boxLines))/2, 0)
	for i, bl := range boxLines {
		at := y + i
		if at >= len(lines) {
			break
		}
		under := lines[at]
		left := ansi.Truncate(under, x, "")
		if w := ansi.StringWidth(left); w < x {
			left += strings.Repeat(" ", x-w)
		}
		// What is right of the box is blanked: a cut row reads as garbage.
		lines[at] = left + "\x1b[m" + bl + "\x1b[m" + strings.Repeat(" ", max(width-x-bw, 0))
	}
	return strings.Join(lines, "\n")
}
