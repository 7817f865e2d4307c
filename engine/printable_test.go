package engine

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "iPhone15C2", "iPhone15C2"},
		{"unicode kept", "Pixel 8 – Zoë", "Pixel 8 – Zoë"},
		{"clear screen removed", "Evil\x1b[2JModel", "EvilModel"},
		{"OSC title removed", "a\x1b]0;owned\x07b", "ab"},
		{"newline made visible", "line1\nline2", `line1\nline2`},
		{"NUL made visible", "a\x00b", `a\u{0}b`},
		{"C1 control", "a\u009bb", `a\u{9B}b`},
		{"bidi override", "abc\u202edef", `abc\u{202E}def`},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"lone ESC at end", "x\x1b", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Printable(tt.in); got != tt.want {
				t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"x", "\x1b[31mred", "\x1b]8;;http://x\x1b\\link", "\r\n\t", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Printable(s)
		if strings.ContainsAny(out, "\x1b\r\n\x00\x07") || !utf8.ValidString(out) {
			t.Fatalf("Printable(%q) = %q still holds control bytes", s, out)
		}
	})
}
