package main

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"easgate/engine/sim/org"
)

// hostilePhone is a partnership whose every field a phone (or whoever
// controls it) chose to attack the terminal an admin reads easgate's
// output on: escape sequences that recolour, retitle, clear or hyperlink,
// 8-bit C1 controls, bidirectional overrides, line separators and raw
// control characters.
var hostilePhone = org.Partnership{
	DeviceID:    "ApplHOST\x1b[2J01",
	DeviceType:  "iPhone\x1b]0;pwned\x07",
	DeviceModel: "\x1b[31mEVILMODEL\x1b[0m\u009b2J\u202eevil",
	DeviceOS:    "iOS 18\r\nFAKE-LINE\x00\x7f",
	UserAgent:   "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\\u2028\u2066",
}

// terminalHazard returns what in out a terminal would act on rather than
// show: an escape, a C0 control other than newline and tab, DEL, a C1
// control, a bidirectional override or isolate, or a line or paragraph
// separator.
func terminalHazard(out string) (rune, bool) {
	for _, r := range out {
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return r, true
		case r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			return r, true
		case unicode.Is(unicode.Cc, r):
			return r, true
		}
	}
	return 0, false
}

// TestHostileDeviceFieldsNeverReachTheTerminalRaw syncs a phone whose fields
// are terminal attacks and reads it back through every text output of the
// CLI: each must show the device, with nothing a terminal would act on.
func TestHostileDeviceFieldsNeverReachTheTerminalRaw(t *testing.T) {
	s := startSim(t, 20, 41)
	cfg := s.Info.ConfigFile
	now := time.Now().UTC()
	p := hostilePhone
	p.FirstSync, p.LastSync, p.WhenChanged = now, now, now
	s.Org.Mu.Lock()
	upn := s.Org.Users[2].UPN
	err := s.Org.AddPartnership(upn, &p)
	s.Org.Mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		// shows is what proves the hostile phone is in the output.
		shows string
	}{
		{name: "dry run plan", args: []string{"sync", "--dry-run"}, shows: "ApplHOST"},
		{name: "sync", args: []string{"sync"}, shows: "run "},
		{name: "devices text", args: []string{"devices"}, shows: "EVILMODEL"},
		{name: "devices text, unmerged", args: []string{"devices", "--state", "unmerged"}, shows: "EVILMODEL"},
		{name: "devices text, blocked", args: []string{"devices", "--state", "blocked"}, shows: "ApplHOST"},
		{name: "devices csv", args: []string{"devices", "--output", "csv"}, shows: "FAKE-LINE"},
		{name: "runs text", args: []string{"runs"}, shows: "full"},
		{name: "notify preview", args: []string{"notify", "preview", upn + "/" + p.DeviceID}, shows: "EVILMODEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, append(tt.args, "--config", cfg)...)
			if r.code != 0 {
				t.Fatalf("%v: exit %d: %s", tt.args, r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.shows) {
				t.Fatalf("output does not show the hostile phone (%q):\n%s", tt.shows, r.stdout)
			}
			for name, out := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				if c, bad := terminalHazard(out); bad {
					i := strings.IndexRune(out, c)
					t.Errorf("%s holds %U raw: %q", name, c, out[max(0, i-40):min(len(out), i+40)])
				}
			}
		})
	}

	// The phone's fields are data: Exchange holds its device ID exactly,
	// on the list easgate chose.
	s.Org.Mu.RLock()
	defer s.Org.Mu.RUnlock()
	if u := s.Org.UserByUPN(upn); !containsFold(u.Blocked, p.DeviceID) {
		t.Errorf("the hostile phone is not blocked by its exact ID: blocked list %q", u.Blocked)
	}
}
