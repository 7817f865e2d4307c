package tui

import (
	"strings"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// line is one line of a scroller's list part: cleaned text and its tone.
type line struct {
	text string
	tone tone
}

// scroller is a scrolling page of text: a head of styled lines the owner
// builds for the current width (a few dozen: the fields of a record), and
// a list of plain lines that may be long (a run's journal), cut to the
// width as they are drawn and filterable with /. Only the lines on screen
// are drawn.
type scroller struct {
	styles *styles
	keys   *keyMap
	noun   string // "journal entries", for the filter line

	head    []string
	list    []line
	search  []string // lower-cased list lines, for the filter
	index   []int    // list lines the filter matches; nil: no filter
	needle  string   // the filter index was computed for
	filter  string
	editing bool

	offset        int
	width, height int
}

// newScroller returns an empty scroller.
func newScroller(st *styles, keys *keyMap, noun string) *scroller {
	return &scroller{styles: st, keys: keys, noun: noun}
}

// setHead replaces the head lines (already styled and at most width wide).
func (s *scroller) setHead(lines []string) {
	s.head = lines
	s.clamp()
}

// setList replaces the list lines; search holds each one's filter text.
func (s *scroller) setList(lines []line, search []string) {
	s.list, s.search = lines, search
	s.index, s.needle = nil, ""
	s.refilter()
	s.clamp()
}

// SetSize sets the width and height in lines.
func (s *scroller) SetSize(width, height int) {
	s.width, s.height = width, height
	s.clamp()
}

// body is how many lines of text show (the last line is the footer).
func (s *scroller) body() int { return max(s.height-1, 1) }

// listLen is how many list lines the filter lets through.
func (s *scroller) listLen() int {
	if s.index != nil {
		return len(s.index)
	}
	return len(s.list)
}

// lines is how many lines the page has.
func (s *scroller) lines() int { return len(s.head) + s.listLen() }

// clamp keeps the offset within the page.
func (s *scroller) clamp() {
	s.offset = min(max(s.offset, 0), max(s.lines()-s.body(), 0))
}

// setFilter filters the list lines by a case-insensitive substring.
func (s *scroller) setFilter(f string) {
	if f == s.filter {
		return
	}
	s.filter = f
	s.refilter()
	s.clamp()
}

// refilter recomputes the list lines the filter matches; a filter that
// narrows the last one scans only the last matches.
func (s *scroller) refilter() {
	needle := normalize(s.filter)
	switch {
	case needle == "":
		s.index, s.needle = nil, ""
	case s.index != nil && s.needle != "" && strings.Contains(needle, s.needle):
		s.index, s.needle = scan(s.search, s.index, len(s.index), needle), needle
	default:
		s.index, s.needle = scan(s.search, nil, len(s.search), needle), needle
	}
}

// capturing reports whether the filter input is open.
func (s *scroller) capturing() bool { return s.editing }

// escape clears the filter; it reports whether there was one.
func (s *scroller) escape() bool {
	if s.filter == "" {
		return false
	}
	s.setFilter("")
	return true
}

// Update scrolls and edits the filter.
func (s *scroller) Update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	if s.editing {
		switch {
		case key.Matches(k, s.keys.acceptInput):
			s.editing = false
		case key.Matches(k, s.keys.clearFilter):
			s.editing = false
			s.setFilter("")
		case key.Matches(k, s.keys.deleteChar):
			if _, size := utf8.DecodeLastRuneInString(s.filter); size > 0 {
				s.setFilter(s.filter[:len(s.filter)-size])
			}
		case key.Matches(k, s.keys.clearInput):
			s.setFilter("")
		case k.Text != "" && !k.Mod.Contains(tea.ModCtrl) && !k.Mod.Contains(tea.ModAlt):
			if utf8.RuneCountInString(s.filter) < maxFieldRunes {
				s.setFilter(s.filter + clean(k.Text))
			}
		}
		return nil
	}
	switch {
	case key.Matches(k, s.keys.up):
		s.offset--
	case key.Matches(k, s.keys.down):
		s.offset++
	case key.Matches(k, s.keys.pageUp):
		s.offset -= s.body()
	case key.Matches(k, s.keys.pageDown):
		s.offset += s.body()
	case key.Matches(k, s.keys.top):
		s.offset = 0
	case key.Matches(k, s.keys.bottom):
		s.offset = s.lines()
	case key.Matches(k, s.keys.filter) && s.list != nil:
		s.editing = true
		// Show the list: the filter works on it.
		s.offset = max(s.offset, len(s.head)-1)
	}
	s.clamp()
	return nil
}

// scroll moves the page by n lines (the mouse wheel).
func (s *scroller) scroll(n int) {
	s.offset += n
	s.clamp()
}

// helpKeys returns the scroller's keys.
func (s *scroller) helpKeys() (short []key.Binding, groups []helpGroup) {
	k := s.keys
	if s.editing {
		return []key.Binding{k.acceptInput, k.clearFilter, k.deleteChar},
			[]helpGroup{{title: "Filter", keys: []key.Binding{k.acceptInput, k.clearFilter, k.deleteChar, k.clearInput}}}
	}
	move := helpGroup{title: "Scroll", keys: []key.Binding{k.up, k.down, k.pageUp, k.pageDown, k.top, k.bottom}}
	if s.list != nil {
		move.keys = append(move.keys, k.filter)
	}
	return []key.Binding{k.up, k.down}, []helpGroup{move}
}

// View renders the lines on screen and the footer, in exactly height lines.
func (s *scroller) View() string {
	var b strings.Builder
	n := s.lines()
	for i := range s.body() {
		at := s.offset + i
		switch {
		case at < len(s.head):
			b.WriteString(ansi.Truncate(s.head[at], s.width, "…"))
		case at < n:
			li := at - len(s.head)
			if s.index != nil {
				li = s.index[li]
			}
			l := s.list[li]
			text := ansi.Truncate("  "+l.text, s.width, "…")
			if l.tone != toneNormal {
				text = s.styles.tone(l.tone).Render(text)
			}
			b.WriteString(text)
		}
		b.WriteByte('\n')
	}
	b.WriteString(s.footer())
	return b.String()
}

// footer shows the filter on the left and the position on the right.
func (s *scroller) footer() string {
	var left string
	switch {
	case s.editing:
		left = "filter " + s.noun + ": " + s.filter + "▏"
	case s.filter != "":
		left = "filter " + s.noun + ": " + s.filter + "  (" + count(s.listLen()) + " of " + count(len(s.list)) + "; esc clears)"
	}
	n := s.lines()
	right := ""
	if n > s.body() {
		right = count(s.offset+1) + "–" + count(min(s.offset+s.body(), n)) + " of " + count(n) + " lines"
	}
	gap := s.width - ansi.StringWidth(left) - ansi.StringWidth(right) - 2
	if gap < 1 {
		return s.styles.footer.Render(ansi.Truncate("  "+left+" "+right, s.width, "…"))
	}
	return s.styles.footer.Render("  " + left + strings.Repeat(" ", gap) + right)
}
