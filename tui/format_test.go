package tui

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"easgate/engine"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "iPhone15C2", want: "iPhone15C2"},
		{name: "empty", in: "", want: ""},
		{name: "unicode kept", in: "Zoë’s Galaxy S24 – 日本", want: "Zoë’s Galaxy S24 – 日本"},
		{name: "clear screen", in: "Evil\x1b[2JModel", want: "Evil␛[2JModel"},
		{name: "colour", in: "\x1b[31mred\x1b[0m", want: "␛[31mred␛[0m"},
		{name: "osc title", in: "\x1b]0;pwned\x07", want: "␛]0;pwned␇"},
		{name: "newline and tab", in: "a\nb\tc\r", want: "a␊b␉c␍"},
		{name: "nul and del", in: "a\x00b\x7f", want: "a␀b␡"},
		{name: "c1 csi", in: "a\u009b2Jb", want: "a\uFFFD2Jb"},
		{name: "invalid utf-8", in: "a\xff\xfeb", want: "a\uFFFD\uFFFDb"},
		{name: "bidi override", in: "user\u202Egpj.exe", want: "user\uFFFDgpj.exe"},
		{name: "bidi isolate", in: "a\u2067b\u2069", want: "a\uFFFDb\uFFFD"},
		{name: "line separator", in: "a\u2028b", want: "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in); got != tt.want {
				t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCleanCapsLength(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "ascii", in: strings.Repeat("A", 1<<20)},
		{name: "unicode", in: strings.Repeat("é", 1<<20)},
		{name: "escapes", in: strings.Repeat("\x1b[2J", 1<<18)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clean(tt.in)
			if n := utf8.RuneCountInString(got); n != maxFieldRunes+1 {
				t.Errorf("clean kept %d runes, want %d and an ellipsis", n, maxFieldRunes)
			}
			if !strings.HasSuffix(got, "…") {
				t.Error("a cut field does not end in an ellipsis")
			}
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want string
	}{
		{name: "zero", in: 0, want: "0"},
		{name: "three digits", in: 999, want: "999"},
		{name: "four digits", in: 1000, want: "1,000"},
		{name: "six digits", in: 150000, want: "150,000"},
		{name: "seven digits", in: 1234567, want: "1,234,567"},
		{name: "negative", in: -1234, want: "-1,234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := count(tt.in); got != tt.want {
				t.Errorf("count(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		name string
		ago  time.Duration
		zero bool
		want string
	}{
		{name: "never", zero: true, want: "never"},
		{name: "seconds", ago: 30 * time.Second, want: "now"},
		{name: "future", ago: -time.Hour, want: "now"},
		{name: "minutes", ago: 59 * time.Minute, want: "59m"},
		{name: "hours", ago: 47 * time.Hour, want: "47h"},
		{name: "days", ago: 13 * 24 * time.Hour, want: "13d"},
		{name: "weeks", ago: 60 * 24 * time.Hour, want: "8w"},
		{name: "years", ago: 800 * 24 * time.Hour, want: "2y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var then time.Time
			if !tt.zero {
				then = fixedNow.Add(-tt.ago)
			}
			if got := age(fixedNow, then); got != tt.want {
				t.Errorf("age = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSpan(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{name: "none", in: 0, want: "—"},
		{name: "millis", in: 850 * time.Millisecond, want: "850ms"},
		{name: "seconds", in: 12*time.Second + 400*time.Millisecond, want: "12s"},
		{name: "minutes", in: 3*time.Minute + 5*time.Second, want: "3m05s"},
		{name: "hours", in: time.Hour + 2*time.Minute + 20*time.Second, want: "1h02m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := span(tt.in); got != tt.want {
				t.Errorf("span(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAccessLabel(t *testing.T) {
	tests := []struct {
		name string
		in   engine.AccessState
		want string
	}{
		{name: "allowed", in: engine.StateAllowed, want: "allowed"},
		{name: "quarantined", in: engine.StateQuarantined, want: "quarantined"},
		{name: "discovery", in: engine.StateDeviceDiscovery, want: "discovery"},
		{name: "empty", in: "", want: "unknown"},
		{name: "future value passes through", in: "ExternallyManaged", want: "externallymanaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := accessLabel(tt.in); got != tt.want {
				t.Errorf("accessLabel(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLayoutColumns(t *testing.T) {
	cols := []column{
		{title: "User", min: 10, weight: 2},
		{title: "Type", min: 6, max: 8, drop: 1},
		{title: "Reason", min: 10, weight: 1},
		{title: "Since", min: 10, max: 10, drop: 2},
	}
	tests := []struct {
		name       string
		width      int
		wantShown  []int
		wantWidths []int
	}{
		{name: "roomy", width: 60, wantShown: []int{0, 1, 2, 3}, wantWidths: []int{22, 8, 17, 10}},
		{name: "exact minimum", width: 39, wantShown: []int{0, 1, 2, 3}, wantWidths: []int{10, 6, 10, 10}},
		{name: "drops the highest drop first", width: 38, wantShown: []int{0, 1, 2}, wantWidths: []int{15, 8, 13}},
		{name: "then the next", width: 27, wantShown: []int{0, 2}, wantWidths: []int{14, 12}},
		{name: "never drops drop 0", width: 5, wantShown: []int{0, 2}, wantWidths: []int{10, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shown, widths := layoutColumns(cols, tt.width)
			if !equalInts(shown, tt.wantShown) || !equalInts(widths, tt.wantWidths) {
				t.Errorf("layoutColumns(%d) = %v %v, want %v %v", tt.width, shown, widths, tt.wantShown, tt.wantWidths)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMergeRecords(t *testing.T) {
	a := []engine.DeviceRecord{dev("anna@x", "B", "", "", "", engine.StateBlocked, 0, 0),
		dev("Chloe@x", "A", "", "", "", engine.StateBlocked, 0, 0)}
	b := []engine.DeviceRecord{dev("anna@x", "a", "", "", "", engine.StateQuarantined, 0, 0),
		dev("ben@x", "Z", "", "", "", engine.StateQuarantined, 0, 0)}
	got := mergeRecords(a, b)
	var keys []string
	for i := range got {
		keys = append(keys, string(got[i].Key()))
	}
	want := "anna@x/a anna@x/b ben@x/z chloe@x/a"
	if strings.Join(keys, " ") != want {
		t.Errorf("merged = %v, want %s", keys, want)
	}
}
