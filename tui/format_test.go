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

func TestBuildDevices(t *testing.T) {
	recs := fixtureDevices()
	queries := []deviceQuery{
		{tab: tabUnmerged, match: func(r *engine.DeviceRecord) bool { return engine.FilterUnmerged.Match(r) }, spec: natural},
		{tab: tabBlocked, match: func(r *engine.DeviceRecord) bool { return r.AccessState == engine.StateBlocked },
			cmp: byUser, spec: sortSpec{col: 0, desc: true}},
		{tab: tabDevices, spec: natural},
	}
	msg := buildDevices(recs, queries)
	names := func(idx []int) string {
		var out []string
		for _, i := range idx {
			mb, _, _ := strings.Cut(recs[i].Mailbox, ".")
			out = append(out, mb)
		}
		return strings.Join(out, " ")
	}
	if got := names(msg.parts[tabUnmerged].base); got != "ben chloe david hugo" {
		t.Errorf("unmerged = %s", got)
	}
	if p := msg.parts[tabBlocked]; names(p.order) != "felix emma chloe" || p.spec != (sortSpec{col: 0, desc: true}) {
		t.Errorf("blocked = %s sorted %+v, want felix emma chloe by user descending", names(p.order), p.spec)
	}
	if p := msg.parts[tabDevices]; p.base != nil || p.order != nil {
		t.Errorf("devices part = %+v, want every row in its order", p)
	}
	if msg.ids[0] != "anna.schmidt@contoso.com/applf17xk2qwe" || !strings.Contains(msg.search[0], "iphone15c2") {
		t.Errorf("ids[0] = %q, search[0] = %q", msg.ids[0], msg.search[0])
	}
}

func TestParseUntil(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr string
	}{
		{name: "empty: no expiry", in: "  "},
		{name: "minutes", in: "90m", want: fixedNow.Add(90 * time.Minute)},
		{name: "hours and minutes", in: "1h30m", want: fixedNow.Add(90 * time.Minute)},
		{name: "days", in: "7d", want: fixedNow.AddDate(0, 0, 7)},
		{name: "weeks", in: "2w", want: fixedNow.AddDate(0, 0, 14)},
		{name: "date", in: "2026-04-01", want: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{name: "date and time", in: "2026-04-01 18:00", want: time.Date(2026, 4, 1, 18, 0, 0, 0, time.UTC)},
		{name: "past date", in: "2026-01-01", wantErr: "not in the future"},
		{name: "zero days", in: "0d", wantErr: "want a number of days"},
		{name: "negative duration", in: "-5m", wantErr: "in the future"},
		{name: "words", in: "tomorrow", wantErr: "want 90m, 36h, 7d, 2w"},
		{name: "junk days", in: "xd", wantErr: "want 90m, 36h, 7d, 2w"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUntil(tt.in, fixedNow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("parseUntil(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestByWhomAndWhy(t *testing.T) {
	rec := func(state engine.AccessState, reason string, d engine.Decision) *engine.DeviceRecord {
		r := dev("a@x", "D1", "", "", "", state, 0, 0)
		r.AccessReason, r.Decision = reason, d
		return &r
	}
	block := engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged, Reason: "not enrolled in Intune"}
	allow := engine.Decision{Access: engine.AccessAllow, Code: engine.ReasonCompliant, Reason: "compliant"}
	quar := engine.Decision{Access: engine.AccessQuarantine, Code: engine.ReasonUnmanaged, Reason: "not enrolled, quarantined"}
	tests := []struct {
		name   string
		r      *engine.DeviceRecord
		who    string
		whyHas string
	}{
		{name: "easgate's list entry", r: rec(engine.StateBlocked, "Individual", block), who: "easgate", whyHas: "not enrolled in Intune"},
		{name: "an admin's override", r: rec(engine.StateBlocked, "Individual",
			engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonAdminOverride, Reason: "blocked by hand by alice"}),
			who: "admin override", whyHas: "blocked by hand by alice"},
		{name: "an admin's own list entry", r: rec(engine.StateBlocked, "Individual",
			engine.Decision{Access: engine.AccessNone, Exempt: true, Code: engine.ReasonAdminEntry, Reason: "an admin put it there"}),
			who: "admin entry", whyHas: "an admin put the device on the mailbox's list by hand"},
		{name: "a list entry easgate does not want", r: rec(engine.StateBlocked, "Individual", allow),
			who: "admin entry", whyHas: "by hand"},
		{name: "a device access rule", r: rec(engine.StateBlocked, "DeviceRule", allow), who: "Exchange rule", whyHas: "device access rule"},
		{name: "the org default, as easgate wants", r: rec(engine.StateQuarantined, "Global", quar), who: "org default", whyHas: "not enrolled, quarantined"},
		{name: "the org default on its own", r: rec(engine.StateBlocked, "Global", allow), who: "org default", whyHas: "default access level"},
		{name: "the mailbox policy", r: rec(engine.StateBlocked, "Policy", block), who: "mailbox policy", whyHas: "not enrolled in Intune"},
		{name: "an automatic block", r: rec(engine.StateBlocked, "CommandFrequency", allow), who: "Exchange", whyHas: "on its own (CommandFrequency)"},
		{name: "no reason reported", r: rec(engine.StateBlocked, "", block), who: "easgate", whyHas: "not enrolled in Intune"},
		{name: "nothing known", r: rec(engine.StateBlocked, "", engine.Decision{}), who: "Exchange", whyHas: "set by Exchange"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := byWhom(tt.r); got != tt.who {
				t.Errorf("by = %q, want %q", got, tt.who)
			}
			if got := blockReason(tt.r); !strings.Contains(got, tt.whyHas) {
				t.Errorf("why = %q, want it to say %q", got, tt.whyHas)
			}
		})
	}
}

func TestDefuse(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "formula", in: "=SUM(A1)", want: "'=SUM(A1)"},
		{name: "plus", in: "+1", want: "'+1"},
		{name: "minus", in: "-1", want: "'-1"},
		{name: "at", in: "@cmd", want: "'@cmd"},
		{name: "tab becomes visible text", in: "\tx", want: "\\tx"},
		{name: "carriage return becomes visible text", in: "\rx", want: "\\rx"},
		{name: "plain", in: "anna@contoso.com", want: "anna@contoso.com"},
		{name: "empty", in: "", want: ""},
		{name: "escape sequence", in: "a\x1b[2Jb", want: "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defuseAll([]string{tt.in})[0]; got != tt.want {
				t.Errorf("defuse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestBar(t *testing.T) {
	tests := []struct {
		name               string
		done, total, width int
		want               string
	}{
		{name: "empty", done: 0, total: 10, width: 5, want: "░░░░░"},
		{name: "half", done: 5, total: 10, width: 4, want: "██░░"},
		{name: "full", done: 10, total: 10, width: 3, want: "███"},
		{name: "over", done: 12, total: 10, width: 3, want: "███"},
		{name: "unknown total", done: 3, total: 0, width: 3, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bar(tt.done, tt.total, tt.width); got != tt.want {
				t.Errorf("bar = %q, want %q", got, tt.want)
			}
		})
	}
}
