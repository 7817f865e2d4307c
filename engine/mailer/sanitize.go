package mailer

import (
	"strings"
	"unicode"
)

// Limits for untrusted values. Exchange caps device IDs at 32 characters;
// models and user agents have no documented cap, so a hostile one is cut.
const (
	maxFieldRunes   = 256
	maxSubjectRunes = 250
)

// cleanLine makes an untrusted value safe for one line of a mail: terminal
// escape sequences, control characters and bidirectional-override marks are
// removed, line breaks and tabs become spaces, runs of white space collapse,
// invalid UTF-8 becomes U+FFFD, and the result is cut to limit runes.
func cleanLine(s string, limit int) string {
	if len(s) <= limit && plain(s, false) && !strings.Contains(s, "  ") &&
		(s == "" || s[0] != ' ' && s[len(s)-1] != ' ') {
		return s // nothing to remove, collapse or cut: the common case
	}
	s = strings.Join(strings.Fields(strip(s, false)), " ")
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit-1]) + "…"
	}
	return s
}

// cleanText is cleanLine for rendered multi-line text: it keeps line feeds
// and tabs, turns CR LF into LF and removes everything else cleanLine does.
func cleanText(s string) string {
	return strip(s, true)
}

// strip removes escape sequences and control characters. Line breaks and
// tabs are kept when multiline is true and become spaces otherwise.
func strip(s string, multiline bool) string {
	if plain(s, multiline) {
		return s
	}
	return stripRunes(s, multiline)
}

// plain reports whether s is printable ASCII (with line feeds and tabs
// when multiline), which strip returns unchanged.
func plain(s string, multiline bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 || c > 0x7e) && !(multiline && (c == '\n' || c == '\t')) {
			return false
		}
	}
	return true
}

// stripRunes is strip's general case.
func stripRunes(s string, multiline bool) string {
	rs := []rune(strings.ToValidUTF8(s, "\uFFFD"))
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == 0x1b: // ESC: a whole escape sequence goes
			i = skipEscape(rs, i)
		case r == 0x9b: // C1 CSI
			i = skipCSI(rs, i+1)
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f: // C1 DCS, SOS, OSC, PM, APC
			i = skipString(rs, i+1)
		case r == '\n' || r == '\t' || r == '\u2028' || r == '\u2029':
			switch {
			case !multiline:
				b.WriteByte(' ')
			case r == '\t':
				b.WriteByte('\t')
			default:
				b.WriteByte('\n')
			}
		case r == '\r':
			if !multiline {
				b.WriteByte(' ')
			}
		case unicode.IsControl(r), isFormatMark(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isFormatMark reports the invisible marks that reorder or hide text
// (bidirectional overrides and isolates, zero-width characters), which
// could make a device name read as something else.
func isFormatMark(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
		r == 0x200b, r == 0x200c, r == 0x200d, r == 0x200e, r == 0x200f, r == 0x061c, r == 0xfeff:
		return true
	}
	return false
}

// skipEscape returns the index of the last rune of the escape sequence
// starting at rs[i] (an ESC).
func skipEscape(rs []rune, i int) int {
	if i+1 >= len(rs) {
		return i
	}
	switch next := rs[i+1]; {
	case next == '[':
		return skipCSI(rs, i+2)
	case next == ']' || next == 'P' || next == 'X' || next == '^' || next == '_':
		return skipString(rs, i+2)
	case next >= 0x20 && next <= 0x2f: // intermediates, then one final byte
		j := i + 1
		for j < len(rs) && rs[j] >= 0x20 && rs[j] <= 0x2f {
			j++
		}
		if j < len(rs) && rs[j] >= 0x30 && rs[j] <= 0x7e {
			return j
		}
		return j - 1
	case next >= 0x30 && next <= 0x7e:
		return i + 1
	}
	return i
}

// skipCSI returns the index of a control sequence's final byte, the
// sequence's parameters starting at rs[j]. A rune that cannot belong to the
// sequence ends it and is kept.
func skipCSI(rs []rune, j int) int {
	for ; j < len(rs); j++ {
		r := rs[j]
		if r >= 0x40 && r <= 0x7e {
			return j
		}
		if r < 0x20 || r > 0x3f {
			return j - 1
		}
	}
	return len(rs) - 1
}

// skipString returns the index of the terminator (BEL, ST or ESC \) of a
// control string whose body starts at rs[j]; an unterminated string runs
// to the end.
func skipString(rs []rune, j int) int {
	for ; j < len(rs); j++ {
		switch rs[j] {
		case 0x07, 0x9c:
			return j
		case 0x1b:
			if j+1 < len(rs) && rs[j+1] == '\\' {
				return j + 1
			}
		}
	}
	return len(rs) - 1
}
