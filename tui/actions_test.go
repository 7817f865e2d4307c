package tui

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// act presses keys one by one, letting the engine calls each makes answer.
func (h *harness) act(keys ...string) {
	h.t.Helper()
	for _, k := range keys {
		h.key(k)
		h.settle()
	}
}

func TestDeviceActions(t *testing.T) {
	tests := []struct {
		name     string
		keys     []string
		want     []string // what the engine was asked, in order
		wantNote string
	}{
		{name: "allow with an expiry and a note",
			keys:     append(append(append([]string{"2", "a"}, typeText("7d")...), "enter"), append(typeText("on leave"), "enter", "enter")...),
			want:     []string{`override ben.novak@contoso.com/androidc1234567 allow until 2026-03-09T10:00:00Z note "on leave" by tester`},
			wantNote: "allowed 1 device by hand until 2026-03-09 10:00"},
		{name: "block until cleared, confirmed with y",
			keys:     []string{"3", "j", "b", "enter", "enter", "y"},
			want:     []string{`override chloe.dubois@contoso.com/sec1a2b3c4d5e6 block until cleared note "" by tester`},
			wantNote: "blocked 1 device by hand"},
		{name: "block every selected device, confirmed on the Block button",
			keys: []string{"2", "space", "space", "b", "tab", "tab", "tab", "enter"},
			want: []string{`override ben.novak@contoso.com/androidc1234567 block until cleared note "" by tester`,
				`override chloe.dubois@contoso.com/sec1a2b3c4d5e6 block until cleared note "" by tester`},
			wantNote: "blocked 2 devices by hand"},
		{name: "clear an override", keys: []string{"3", "G", "c", "enter"},
			want:     []string{`override felix.kowalski@contoso.com/applipad77 none until cleared note "" by tester`},
			wantNote: "cleared the override of 1 device"},
		{name: "unlink a manual link", keys: []string{"4", "j", "j", "j", "j", "U", "enter"},
			want: []string{"unlink emma.jensen@contoso.com/w1nph0ne by tester"}, wantNote: "unlinked W1NPH0NE"},
		{name: "remove a partnership", keys: []string{"3", "R", "y"},
			want: []string{"remove ben.novak@contoso.com/androidc1234567 by tester"}, wantNote: "removed the partnership of androidc1234567"},
		{name: "wipe the account only (the default)", keys: []string{"3", "j", "W", "y"},
			want:     []string{"wipe chloe.dubois@contoso.com/sec1a2b3c4d5e6 account-only=true by tester"},
			wantNote: "requested an account-only wipe of SEC1A2B3C4D5E6"},
		{name: "wipe the whole device", keys: []string{"3", "j", "W", "down", "enter", "right", "enter"},
			want:     []string{"wipe chloe.dubois@contoso.com/sec1a2b3c4d5e6 account-only=false by tester"},
			wantNote: "requested a full wipe of SEC1A2B3C4D5E6"},
		{name: "resend to every device shown", keys: []string{"2", "*", "m", "enter"},
			want: []string{"resend [ben.novak@contoso.com/androidc1234567 chloe.dubois@contoso.com/sec1a2b3c4d5e6 " +
				"david.rossi@contoso.com/evil0001 hugo.smith@contoso.com/androidd999] by tester"},
			wantNote: "4 notifications sent"},
		{name: "link the second candidate", keys: []string{"2", "l", "down", "enter"},
			want: []string{"link ben.novak@contoso.com/androidc1234567 mdm-ben-ipad by tester"}, wantNote: "linked androidc1234567 to MDM record mdm-ben-ipad"},
		{name: "link from the device's page", keys: []string{"2", "enter", "l", "y"},
			want: []string{"link ben.novak@contoso.com/androidc1234567 mdm-ben-pixel by tester"}},
		{name: "resend from the device's page", keys: append(append([]string{"3", "/"}, typeText("chloe")...), "enter", "enter", "m", "y"),
			want: []string{"resend [chloe.dubois@contoso.com/sec1a2b3c4d5e6] by tester"}, wantNote: "notification sent to chloe.dubois@contoso.com"},
		{name: "cancel a dialog with esc", keys: []string{"3", "b", "esc"}},
		{name: "cancel a dialog with n on a button", keys: []string{"3", "R", "n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			h := newHarness(t, f, Options{}, 120, 40).start()
			h.act(tt.keys...)
			if got := f.did(); !slices.Equal(got, tt.want) {
				t.Errorf("engine was asked\n  %q\nwant\n  %q", got, tt.want)
			}
			if h.m.dialog != nil {
				t.Errorf("a dialog is still open:\n%s", h.screen())
			}
			if tt.wantNote != "" && !strings.Contains(h.screen(), tt.wantNote) {
				t.Errorf("status line does not say %q:\n%s", tt.wantNote, h.screen())
			}
		})
	}
}

func TestDangerousDialogsDefaultToNo(t *testing.T) {
	tests := []struct {
		name string
		held bool
		keys []string
	}{
		{name: "block", keys: []string{"3", "b"}},
		{name: "remove", keys: []string{"3", "R"}},
		{name: "wipe", keys: []string{"3", "W"}},
		{name: "approve", keys: []string{"6", "A"}, held: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			if tt.held {
				f.setHeld(heldPlan())
			}
			h := newHarness(t, f, Options{}, 120, 40).start()
			h.act(tt.keys...)
			if h.m.dialog == nil || !h.m.dialog.danger {
				t.Fatalf("no dangerous dialog open:\n%s", h.screen())
			}
			// Enter, however often, walks to No and takes it.
			for i := 0; i < 4 && h.m.dialog != nil; i++ {
				h.act("enter")
			}
			if h.m.dialog != nil {
				t.Fatalf("enter did not close the dialog:\n%s", h.screen())
			}
			if got := f.did(); len(got) != 0 {
				t.Errorf("enter confirmed a dangerous action: %q", got)
			}
			if n := f.callCount("Approve"); n != 0 {
				t.Errorf("enter approved the plan")
			}
		})
	}
}

func TestReadOnlyRefusesWhatChanges(t *testing.T) {
	tests := []struct {
		tab, key, want string
	}{
		{"2", "m", "m (resend mail) is off: the console is read-only"},
		{"2", "l", "l (link MDM record) is off: the console is read-only"},
		{"4", "U", "U (unlink) is off: the console is read-only"},
		{"2", "a", "a (allow by hand) is off: the console is read-only"},
		{"3", "b", "b (block by hand) is off: the console is read-only"},
		{"3", "c", "c (clear override) is off: the console is read-only"},
		{"3", "R", "R (remove partnership) is off: the console is read-only"},
		{"3", "W", "W (wipe) is off: the console is read-only"},
		{"6", "A", "A (approve plan) is off: the console is read-only"},
		{"6", "X", "X (discard plan) is off: the console is read-only"},
		{"1", "x", "x (cancel sync) is off: the console is read-only"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			f := newFake()
			f.setHeld(heldPlan())
			h := newHarness(t, f, Options{ReadOnly: true}, 120, 40).start()
			h.act(tt.tab, tt.key)
			if h.m.dialog != nil {
				t.Errorf("a dialog opened in read-only mode:\n%s", h.screen())
			}
			if !strings.Contains(h.screen(), "Warning: "+tt.want) {
				t.Errorf("status line does not say %q:\n%s", tt.want, h.screen())
			}
			for _, m := range []string{"Preview", "Candidates", "Resend", "Link", "Unlink", "Override", "RemovePartnership", "Wipe", "Approve", "Discard", "Cancel"} {
				if n := f.callCount(m); n != 0 {
					t.Errorf("read-only console called %s", m)
				}
			}
		})
	}
	t.Run("looking still works", func(t *testing.T) {
		f := newFake()
		h := newHarness(t, f, Options{ReadOnly: true}, 120, 40).start()
		h.act("2", "p")
		if h.m.dialog == nil || h.m.dialog.yesLabel != "" || !strings.Contains(h.screen(), "Subject: Enroll your phone") {
			t.Errorf("p does not preview the mail (without a send button):\n%s", h.screen())
		}
	})
}

func TestDisabledKeysSayWhy(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		want string
	}{
		{name: "link a merged device", keys: []string{"4", "l"},
			want: "l (link MDM record) is off: ApplF17XK2QWE is merged with MDM record a1b2c3d4-0001 already (by EAS device ID); unlink it first"},
		{name: "unlink a device merged by EAS ID", keys: []string{"4", "U"},
			want: "U (unlink) is off: ApplF17XK2QWE has no link to remove: it was merged by EAS device ID, not by hand"},
		{name: "unlink an unmerged device", keys: []string{"2", "U"},
			want: "U (unlink) is off: androidc1234567 has no link to remove: it is not merged"},
		{name: "clear without an override", keys: []string{"2", "c"},
			want: "c (clear override) is off: no override on androidc1234567: its access follows the policy"},
		{name: "approve without a held plan", keys: []string{"6", "A"},
			want: "A (approve plan) is off: no plan is held by the safety brake"},
		{name: "link a user without MDM records", keys: []string{"2", "j", "l"},
			want: "no MDM record of chloe.dubois@contoso.com can be linked"},
		{name: "an action on an empty list", keys: []string{"2", "/", "z", "z", "enter", "b"},
			want: "b (block by hand ⚠): no device under the cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			h := newHarness(t, f, Options{}, 160, 40).start()
			h.act(tt.keys...)
			if h.m.dialog != nil {
				t.Errorf("a dialog opened:\n%s", h.screen())
			}
			if !strings.Contains(h.screen(), tt.want) {
				t.Errorf("status line does not say %q:\n%s", tt.want, h.screen())
			}
		})
	}
}

func TestActionErrorsShowInStatusLine(t *testing.T) {
	tests := []struct {
		name string
		prep func(*fakeAPI)
		keys []string
		want string
	}{
		{name: "engine refuses an override", prep: func(f *fakeAPI) { f.errs["Override"] = engine.ErrReadOnly },
			keys: []string{"2", "a", "enter", "enter", "enter"},
			want: "Error: allow ben.novak@contoso.com/androidc1234567: read-only: this action changes Exchange or the store"},
		{name: "no mailer", prep: func(f *fakeAPI) {
			f.errs["Preview"] = fmt.Errorf("preview: no mailer configured: %w", engine.ErrUnavailable)
		},
			keys: []string{"2", "m"},
			want: "Error: preview the notification of ben.novak@contoso.com/androidc1234567: preview: no mailer configured: not available"},
		{name: "a stale plan", prep: func(f *fakeAPI) { f.setHeld(heldPlan()) },
			keys: []string{"6", "stale", "A", "y"},
			want: "Error: approve plan plan-7: plan plan-7 is not the held plan plan-8: plan is stale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.prep(f)
			h := newHarness(t, f, Options{}, 200, 40).start()
			for _, k := range tt.keys {
				if k == "stale" {
					// The store moves on behind the console's back.
					p := heldPlan()
					p.ID = "plan-8"
					f.setHeld(p)
					continue
				}
				h.act(k)
			}
			h.until(tt.want, func(*Model) bool { return strings.Contains(h.screen(), tt.want) })
		})
	}
}

func TestCopyDeviceID(t *testing.T) {
	h := newHarness(t, newFake(), Options{ReadOnly: true}, 120, 40).start()
	h.act("2", "j")
	_, cmd := h.m.Update(keyPress("y"))
	if cmd == nil {
		t.Fatal("y returned no command")
	}
	if got, want := cmd(), tea.SetClipboard("SEC1A2B3C4D5E6")(); !reflect.DeepEqual(got, want) {
		t.Errorf("y sets the clipboard with %#v, want %#v", got, want)
	}
	if !strings.Contains(h.screen(), "copied device ID SEC1A2B3C4D5E6 to the clipboard") {
		t.Errorf("status line does not say what was copied:\n%s", h.screen())
	}
}

func TestExportCSV(t *testing.T) {
	tests := []struct {
		name     string
		keys     []string
		prefix   string
		wantRows int
		check    func(t *testing.T, rows [][]string)
	}{
		{name: "unmerged", keys: []string{"2", "e"}, prefix: "easgate-unmerged-20260302-100000", wantRows: 4,
			check: func(t *testing.T, rows [][]string) {
				if rows[1][0] != "ben.novak@contoso.com" || rows[1][1] != "androidc1234567" || rows[1][17] != "org default" {
					t.Errorf("first row = %q", rows[1])
				}
			}},
		{name: "the filter's rows in the sort's order", keys: []string{"4", "/", "a", "n", "d", "r", "o", "i", "d", "enter", "O", "e"},
			prefix: "easgate-devices-", wantRows: 3,
			check: func(t *testing.T, rows [][]string) {
				if rows[1][0] != "hugo.smith@contoso.com" || rows[2][0] != "chloe.dubois@contoso.com" || rows[3][0] != "ben.novak@contoso.com" {
					t.Errorf("rows = %q, want hugo, chloe, ben", rows[1:])
				}
			}},
		{name: "formulas are defused", keys: []string{"2", "formula", "e"}, prefix: "easgate-unmerged-", wantRows: 4,
			check: func(t *testing.T, rows [][]string) {
				if got := rows[1][3]; got != "'=HYPERLINK(\"http://evil\")" {
					t.Errorf("model cell = %q, want it defused with a leading '", got)
				}
				if got := rows[1][4]; got != "'-2+3" {
					t.Errorf("OS cell = %q, want it defused", got)
				}
				if got := rows[2][3]; got != "SM-S911B" {
					t.Errorf("a harmless cell changed: %q", got)
				}
			}},
		{name: "runs", keys: []string{"5", "e"}, prefix: "easgate-runs-", wantRows: 3},
		{name: "journal", keys: []string{"7", "e"}, prefix: "easgate-journal-", wantRows: 5},
		{name: "plan", keys: []string{"6", "e"}, prefix: "easgate-plan-", wantRows: 5},
		{name: "log", keys: []string{"8", "e"}, prefix: "easgate-log-", wantRows: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.setHeld(heldPlan())
			dir := t.TempDir()
			h := newHarness(t, f, Options{exportDir: dir}, 120, 40).start()
			for _, k := range tt.keys {
				if k == "formula" {
					f.mu.Lock()
					f.devices[1].DeviceModel = `=HYPERLINK("http://evil")`
					f.devices[1].DeviceOS = "-2+3"
					f.mu.Unlock()
					h.send(resubscribeMsg{}) // reload
					h.settle()
					continue
				}
				h.act(k)
			}
			h.until("exported", func(m *Model) bool { return strings.HasPrefix(m.note, "exported") })
			files, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
			if len(files) != 1 || !strings.HasPrefix(filepath.Base(files[0]), tt.prefix) {
				t.Fatalf("files = %v, want one named %s…", files, tt.prefix)
			}
			if !strings.Contains(h.screen(), fmt.Sprintf("exported %d rows to %s", tt.wantRows, filepath.Base(files[0]))) {
				t.Errorf("status line does not name the file:\n%s", h.screen())
			}
			fh, err := os.Open(files[0])
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			rows, err := csv.NewReader(fh).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tt.wantRows+1 {
				t.Errorf("file has %d rows, want a header and %d", len(rows), tt.wantRows)
			}
			if tt.check != nil {
				tt.check(t, rows)
			}
		})
	}
	t.Run("never overwrites", func(t *testing.T) {
		dir := t.TempDir()
		h := newHarness(t, newFake(), Options{exportDir: dir}, 120, 40).start()
		h.act("2", "e")
		h.act("e")
		files, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
		if len(files) != 2 {
			t.Errorf("two exports in the same second wrote %v, want two files", files)
		}
	})
}

func TestDevicePage(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 120, 60).start()
	h.act("2", "enter")
	p, ok := h.m.current().(*deviceDetail)
	if !ok {
		t.Fatalf("enter opened %T", h.m.current())
	}
	for _, m := range []string{"Device", "Candidates"} {
		if f.callCount(m) != 1 {
			t.Errorf("the page called %s %d times, want once", m, f.callCount(m))
		}
	}
	screen := h.screen()
	for _, want := range []string{"Device ben.novak@contoso.com / androidc1234567", "set by org default",
		"EAS record (Exchange)", "MDM record (Intune)", "★ mdm-ben-pixel", "Notifications", "2 time(s)",
		"press i to read them from Exchange", "enrollment notification sent to ben.novak@contoso.com"} {
		if !strings.Contains(screen, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	h.act("i")
	if f.callCount("Statistics") != 1 || !strings.Contains(h.screen(), "DeviceOk") {
		t.Errorf("i does not show Exchange's statistics:\n%s", h.screen())
	}
	h.act("/", "n", "o", "t", "i", "f", "y")
	if n := p.sc.listLen(); n != 1 {
		t.Errorf("filtering the journal leaves %d lines, want 1", n)
	}
	h.act("esc")
	if len(h.m.stack) != 1 {
		t.Error("esc in the filter closed the page")
	}
	h.act("esc")
	if len(h.m.stack) != 0 || h.m.active != tabUnmerged {
		t.Error("esc does not go back to the list")
	}
	// An engine state change re-reads the page.
	h.act("enter")
	before := f.callCount("Device")
	h.send(eventsMsg{evs: []engine.Event{{Kind: engine.EventState}}})
	h.settle()
	if f.callCount("Device") <= before {
		t.Error("a state change did not re-read the device's page")
	}
}

func TestRemovedDeviceClosesItsPage(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 120, 40).start()
	h.act("3", "enter", "R", "y")
	if len(h.m.stack) != 0 {
		t.Errorf("the removed device's page is still open:\n%s", h.screen())
	}
	if n, _ := h.m.blocked.Count(); n != 3 {
		t.Errorf("Blocked holds %d devices after the removal, want 3", n)
	}
}

func TestRunPage(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 120, 40).start()
	h.act("5", "enter")
	if f.callCount("RunDetail") != 1 {
		t.Fatalf("the run page called RunDetail %d times", f.callCount("RunDetail"))
	}
	screen := h.screen()
	for _, want := range []string{"Run run-3", "schedule by easgate", "Phases", "reading Exchange", "✗ smtp: 550 mailbox unavailable",
		"Problems (1)", "Journal: every change and its result (4 entries)"} {
		if !strings.Contains(screen, want) {
			t.Errorf("page lacks %q:\n%s", want, screen)
		}
	}
	h.act("G")
	if !strings.Contains(h.screen(), "✓ change  chloe.dubois@contoso.com: add SEC1A2B3C4D5E6 blocked list: ok") {
		t.Errorf("the journal's change is not on the page:\n%s", h.screen())
	}
	h.act("/", "f", "a", "i", "l", "e", "d")
	p := h.m.current().(*runDetail)
	if n := p.sc.listLen(); n != 1 {
		t.Errorf("filter leaves %d journal lines, want 1", n)
	}
}

func TestJournalOpensTheDevice(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 120, 40).start()
	h.act("7", "enter")
	p, ok := h.m.current().(*deviceDetail)
	if !ok || p.key != "felix.kowalski@contoso.com/applipad77" {
		t.Fatalf("enter on the newest journal entry opened %T", h.m.current())
	}
	if !strings.Contains(h.screen(), "blocked by hand by alice") {
		t.Errorf("the device page lacks its override:\n%s", h.screen())
	}
}

func TestLogViewPolls(t *testing.T) {
	f := newFake()
	h := newHarness(t, f, Options{}, 120, 40).start()
	before := f.callCount("Logs")
	h.act("8")
	if f.callCount("Logs") != before+1 || !h.m.logTicking {
		t.Fatalf("showing the Log did not read it and start polling")
	}
	h.send(logTickMsg{})
	h.settle()
	if f.callCount("Logs") != before+2 {
		t.Errorf("a tick while the Log shows did not read it again")
	}
	h.act("1")
	h.send(logTickMsg{})
	h.settle()
	if f.callCount("Logs") != before+2 || h.m.logTicking {
		t.Errorf("the Log is read while it does not show")
	}
	if !strings.Contains(h.screen(), "Overview") {
		t.Error("lost the overview")
	}
}

func TestPlanReview(t *testing.T) {
	f := newFake()
	f.setHeld(heldPlan())
	h := newHarness(t, f, Options{}, 140, 40).start()
	h.act("6")
	if n := h.m.plan.table.len(); n != 5 {
		t.Errorf("plan view has %d rows, want 4 changes and a mail", n)
	}
	screen := h.screen()
	for _, want := range []string{"Held plan plan-7", "safety brake: 3 new blocks exceed the limit of 2",
		"allowed list +1 −1 · blocked list +2 −0 · 1 mails · 0 withheld · 3 new blocks", "⚠ + blocked"} {
		if !strings.Contains(screen, want) {
			t.Errorf("plan view lacks %q:\n%s", want, screen)
		}
	}
	// A dry run shows its plan; v goes back to the held one.
	h.act("d")
	h.until("dry run", func(m *Model) bool { return !m.running() && m.plan.show == m.plan.dry })
	if !strings.Contains(h.screen(), "Dry-run plan plan-dry") {
		t.Errorf("the dry run's plan does not show:\n%s", h.screen())
	}
	h.act("v")
	if h.m.plan.heldPlan() == nil {
		t.Fatal("v does not show the held plan")
	}
	h.act("X", "enter")
	if got := f.did(); !slices.Contains(got, "discard plan-7 by tester") {
		t.Errorf("engine was asked %q, want a discard", got)
	}
	if h.m.plan.held != nil {
		t.Error("the discarded plan still shows as held")
	}
}

func TestBrakedSyncShowsThePlan(t *testing.T) {
	f := newFake()
	f.brake = true
	h := newHarness(t, f, Options{}, 140, 40).start()
	h.act("s")
	h.until("braked", func(m *Model) bool { return !m.running() })
	if h.m.active != tabPlan || h.m.plan.heldPlan() == nil {
		t.Fatalf("a braked sync shows %s", tabTitles[h.m.active])
	}
	if !strings.Contains(h.screen(), "full sync held by the safety brake: 3 new blocks exceed the limit of 2 · the Plan view shows it") {
		t.Errorf("status line does not say the plan is held:\n%s", h.screen())
	}
	h.act("A", "y")
	h.until("approved", func(m *Model) bool { return !m.running() && f.callCount("Approve") == 1 })
	if got := f.syncRequests(); len(got) != 2 || got[1].PlanID != "plan-7" {
		t.Errorf("sync requests = %+v, want the approved plan's run", got)
	}
	h.settle()
	if h.m.plan.heldPlan() != nil {
		t.Error("the approved plan still shows as held")
	}
}
