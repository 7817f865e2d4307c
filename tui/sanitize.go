package tui

import (
	"strings"
	"unicode/utf8"
)

// maxFieldRunes caps how much of one untrusted field is cleaned and shown:
// no column is wider, and a megabyte-long model name must not cost a
// megabyte of work per frame.
const maxFieldRunes = 256

// clean makes an untrusted string (a device field, an error text) safe to
// put on the terminal. Control characters become their visible Unicode
// "control picture" (ESC shows as ␛, so "\x1b[2J" renders as the harmless
// text "␛[2J"), C1 controls, invalid UTF-8 and bidirectional overrides
// become U+FFFD, and the result is cut to maxFieldRunes runes.
func clean(s string) string {
	if plainASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), 4*maxFieldRunes))
	n := 0
	for i := 0; i < len(s); {
		if n == maxFieldRunes {
			b.WriteRune('…')
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
		case r < 0x20:
			b.WriteRune(0x2400 + r) // U+2400..U+241F: ␀ … ␟
		case r == 0x7f:
			b.WriteRune('␡')
		case r >= 0x80 && r <= 0x9f, unsafeFormat(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// plainASCII reports whether s is printable ASCII short enough to show as is:
// the common case, which costs no allocation.
func plainASCII(s string) bool {
	if len(s) > maxFieldRunes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// unsafeFormat reports whether r reorders or breaks the text around it:
// bidirectional embeddings, overrides and isolates, and the Unicode line
// and paragraph separators.
func unsafeFormat(r rune) bool {
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}
