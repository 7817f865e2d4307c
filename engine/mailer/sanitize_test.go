package mailer

import (
	"strings"
	"testing"
)

func TestCleanLine(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "iPhone15C2", want: "iPhone15C2"},
		{name: "line breaks and tabs become spaces", in: "X\r\nBcc: evil@x\tY", want: "X Bcc: evil@x Y"},
		{name: "unicode line separators", in: "a\u2028b\u2029c\u0085d", want: "a b cd"},
		{name: "csi colour", in: "\x1b[1;31mRED\x1b[0m", want: "RED"},
		{name: "c1 csi", in: "\u009b31mRED", want: "RED"},
		{name: "osc title with bel", in: "\x1b]0;pwned\x07Phone", want: "Phone"},
		{name: "osc hyperlink with st", in: "\x1b]8;;https://evil\x1b\\Phone\x1b]8;;\x1b\\", want: "Phone"},
		{name: "charset designation", in: "\x1b(BPhone", want: "Phone"},
		{name: "two-byte escape", in: "\x1bcPhone", want: "Phone"},
		{name: "lone escape at the end", in: "Phone\x1b", want: "Phone"},
		{name: "unterminated csi", in: "Phone\x1b[12", want: "Phone"},
		{name: "csi cut by a letter it cannot hold", in: "\x1b[1\u00e9t\u00e9", want: "\u00e9t\u00e9"},
		{name: "unterminated osc drops the rest", in: "Phone\x1b]0;title", want: "Phone"},
		{name: "nul, bel, del", in: "a\x00b\x07c\x7fd", want: "abcd"},
		{name: "bidi override and zero width", in: "\u202egnp.exe\u200b\ufeff", want: "gnp.exe"},
		{name: "invalid utf-8", in: "a\xffb", want: "a\uFFFDb"},
		{name: "spaces collapse and trim", in: "  a   b  ", want: "a b"},
		{name: "accents and emoji stay", in: "Zoë’s 📱", want: "Zoë’s 📱"},
		{name: "cut at the limit", in: strings.Repeat("x", 300), want: strings.Repeat("x", maxFieldRunes-1) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanLine(tt.in, maxFieldRunes); got != tt.want {
				t.Errorf("cleanLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCleanTextKeepsLines(t *testing.T) {
	in := "line one\r\n\tindented \x1b[2Kline\x00 two\n"
	if got, want := cleanText(in), "line one\n\tindented line two\n"; got != want {
		t.Errorf("cleanText = %q, want %q", got, want)
	}
}

// FuzzCleanFastPath checks that the shortcut for plain text gives what the
// general case would.
func FuzzCleanFastPath(f *testing.F) {
	for _, s := range []string{"iPhone15C2", " a", "a ", "a  b", "a\tb", "line\nbreak", "x\r\ny", "é", "\x7f", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, multiline := range []bool{false, true} {
			if got, want := strip(s, multiline), stripRunes(s, multiline); got != want {
				t.Errorf("strip(%q, %t) = %q, want %q", s, multiline, got, want)
			}
		}
		limit := maxFieldRunes
		want := strings.Join(strings.Fields(stripRunes(s, false)), " ")
		if r := []rune(want); len(r) > limit {
			want = string(r[:limit-1]) + "…"
		}
		if got := cleanLine(s, limit); got != want {
			t.Errorf("cleanLine(%q) = %q, want %q", s, got, want)
		}
	})
}
