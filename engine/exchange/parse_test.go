package exchange

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"easgate/engine"
)

func TestParseLineQuirks(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, r *record)
	}{
		{name: "ISO date", line: `{"t":"device","FirstSyncTime":"2026-11-01T12:00:00Z"}`, check: func(t *testing.T, r *record) {
			want(t, time.Time(r.FirstSyncTime), time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
		}},
		{name: "ISO date with offset and 7 fraction digits", line: `{"FirstSyncTime":"2026-11-01T14:00:00.1234567+02:00"}`, check: func(t *testing.T, r *record) {
			want(t, time.Time(r.FirstSyncTime), time.Date(2026, 11, 1, 12, 0, 0, 123456700, time.UTC))
		}},
		{name: "ISO date without zone is UTC", line: `{"FirstSyncTime":"2026-11-01T12:00:00"}`, check: func(t *testing.T, r *record) {
			want(t, time.Time(r.FirstSyncTime), time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
		}},
		{name: "5.1 /Date(ms)/", line: `{"FirstSyncTime":"\/Date(1761998400000)\/"}`, check: func(t *testing.T, r *record) {
			want(t, time.Time(r.FirstSyncTime), time.Date(2025, 11, 1, 12, 0, 0, 0, time.UTC))
		}},
		{name: "5.1 /Date(ms+offset)/", line: `{"FirstSyncTime":"\/Date(1761998400000+0100)\/"}`, check: func(t *testing.T, r *record) {
			want(t, time.Time(r.FirstSyncTime), time.Date(2025, 11, 1, 12, 0, 0, 0, time.UTC))
		}},
		{name: "5.1 date wrapper object", line: `{"FirstSyncTime":{"value":"\/Date(1761998400000)\/","DisplayHint":2,"DateTime":"Saturday"}}`, check: func(t *testing.T, r *record) {
			want(t, time.Time(r.FirstSyncTime), time.Date(2025, 11, 1, 12, 0, 0, 0, time.UTC))
		}},
		{name: "null and empty dates", line: `{"FirstSyncTime":null,"LastSuccessSync":""}`, check: func(t *testing.T, r *record) {
			want(t, time.Time(r.FirstSyncTime).IsZero() && time.Time(r.LastSuccessSync).IsZero(), true)
		}},
		{name: "numeric enums", line: `{"DeviceAccessState":2,"DeviceAccessStateReason":51,"AccessLevel":2,"Characteristic":3}`, check: func(t *testing.T, r *record) {
			want(t, []string{enumName(r.DeviceAccessState, accessStates), reasonName(r.DeviceAccessStateReason),
				enumName(r.AccessLevel, accessLevels), enumName(r.Characteristic, characteristics)},
				[]string{"Blocked", "ExternallyManaged", "Quarantine", "UserAgent"})
		}},
		{name: "unknown enum values pass through", line: `{"DeviceAccessState":"Sleeping","DeviceAccessStateReason":99}`, check: func(t *testing.T, r *record) {
			want(t, []string{enumName(r.DeviceAccessState, accessStates), reasonName(r.DeviceAccessStateReason)}, []string{"Sleeping", "99"})
		}},
		{name: "single value where a list belongs", line: `{"ActiveSyncAllowedDeviceIDs":"ApplX","ActiveSyncBlockedDeviceIDs":null}`, check: func(t *testing.T, r *record) {
			want(t, []string(r.ActiveSyncAllowedDeviceIDs), []string{"ApplX"})
			want(t, r.ActiveSyncBlockedDeviceIDs == nil, true)
		}},
		{name: "list wrapper object", line: `{"EmailAddresses":{"value":["SMTP:a@b","smtp:c@d"],"Count":2}}`, check: func(t *testing.T, r *record) {
			want(t, []string(r.EmailAddresses), []string{"SMTP:a@b", "smtp:c@d"})
		}},
		{name: "keys in any case, unknown keys ignored", line: `{"T":"device","deviceid":"X","DEVICETYPE":"iPhone","Extra":{"a":[1]}}`, check: func(t *testing.T, r *record) {
			want(t, []string{r.T, string(r.DeviceID), string(r.DeviceType)}, []string{"device", "X", "iPhone"})
		}},
		{name: "booleans and numbers as strings", line: `{"ok":"True","id":7,"devices":"12"}`, check: func(t *testing.T, r *record) {
			want(t, []any{bool(r.OK), string(r.ID), int(*r.Devices)}, []any{true, "7", 12})
		}},
		{name: "byte order mark", line: "\xef\xbb\xbf{\"t\":\"begin\"}", check: func(t *testing.T, r *record) { want(t, r.T, "begin") }},
		{name: "escaped unicode", line: `{"DeviceId":"a\u00e9\ud83d\ude00\"$()"}`, check: func(t *testing.T, r *record) {
			want(t, string(r.DeviceID), "aé😀\"$()")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p lineParser
			n := 0
			if err := p.parse([]byte(tt.line), func(r *record) { n++; tt.check(t, r) }); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d records, want 1", n)
			}
		})
	}
}

func want[T any](t *testing.T, got, want T) {
	t.Helper()
	if !slicesEqualAny(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func slicesEqualAny(a, b any) bool {
	switch x := a.(type) {
	case []string:
		return slices.Equal(x, b.([]string))
	case []any:
		return slices.Equal(x, b.([]any))
	case time.Time:
		return x.Equal(b.(time.Time))
	}
	return a == b
}

func TestParseLineRejects(t *testing.T) {
	tests := []struct{ name, line string }{
		{name: "cut off", line: `{"t":"device","DeviceId":"X`},
		{name: "not JSON", line: `<S S="Error">oops</S>`},
		{name: "a bare number", line: `12`},
		{name: "a bare string", line: `"device"`},
		{name: "a date that is not one", line: `{"FirstSyncTime":"yesterday"}`},
		{name: "a list that is an object", line: `{"EmailAddresses":{"a":1}}`},
		{name: "a string that is an object", line: `{"DeviceId":{"a":1}}`},
		{name: "a count that is not a number", line: `{"devices":"many"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p lineParser
			if err := p.parse([]byte(tt.line), func(*record) {}); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	in := "one\r\ntwo\n\r\n" + long + "\nlast without newline"
	var got []string
	res := &runResult{}
	if err := readLines(strings.NewReader(in), res, func(n int, line []byte) { got = append(got, string(line)) }); err != nil {
		t.Fatal(err)
	}
	wantLines := []string{"one", "two", "", long[:maxLine], "last without newline"}
	if !slices.Equal(got, wantLines) {
		t.Errorf("lines %q…, want %q…", shorten(got), shorten(wantLines))
	}
	if res.lines != 5 || res.bytes != int64(len(in)) {
		t.Errorf("lines %d bytes %d", res.lines, res.bytes)
	}
}

func shorten(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x[:min(len(x), 20)]
	}
	return out
}

// TestInventoryFromWindowsPowerShell51 feeds output in 5.1's quirky forms
// (BOM, CRLF, numeric enums, /Date(ms)/, single values for lists, wrapper
// objects, an array line, unknown properties and line types) through the
// inventory builder.
func TestInventoryFromWindowsPowerShell51(t *testing.T) {
	data, err := os.ReadFile("testdata/inventory-ps51.txt")
	if err != nil {
		t.Fatal(err)
	}
	b := newInventoryBuilder(engine.InventoryQuery{}, slog.New(slog.DiscardHandler))
	if err := readLines(bytes.NewReader(data), &runResult{}, b.line); err != nil {
		t.Fatal(err)
	}
	inv := b.finish(&stderrRecords{})
	if !inv.Complete() {
		t.Fatalf("problems: %q", inv.Problems)
	}
	if inv.Org.DefaultAccessLevel != "Quarantine" || !slices.Equal(inv.Org.AdminMailRecipients, []string{"mobile-admins@contoso.com"}) {
		t.Errorf("org %+v", inv.Org)
	}
	wantRules := []engine.DeviceAccessRule{
		{Characteristic: "DeviceModel", QueryString: "Nokia Lumia 930", AccessLevel: "Block"},
		{Characteristic: "DeviceType", QueryString: "iPhone", AccessLevel: "Allow"},
	}
	if !slices.Equal(inv.Rules, wantRules) {
		t.Errorf("rules %+v", inv.Rules)
	}
	wantMailbox := engine.Mailbox{UPN: "anna@corp.contoso.com", PrimarySMTP: "anna@contoso.com",
		Addresses: []string{"anna@contoso.com", "anna@corp.contoso.com"}, Allowed: []string{"ADMIN1"}, Blocked: []string{}}
	if len(inv.Mailboxes) != 1 || !mailboxEqual(inv.Mailboxes[0], wantMailbox) {
		t.Errorf("mailboxes %+v", inv.Mailboxes)
	}
	if len(inv.Devices) != 2 {
		t.Fatalf("devices %+v", inv.Devices)
	}
	iphone, samsung := inv.Devices[0], inv.Devices[1]
	if iphone.DeviceID != "ApplF17ABCDEF12" || iphone.AccessState != engine.StateBlocked || iphone.AccessReason != "ExternallyManaged" ||
		iphone.Mailbox != "anna@corp.contoso.com" || iphone.PrimarySMTP != "anna@contoso.com" ||
		!iphone.FirstSync.Equal(time.Date(2024, 10, 1, 12, 0, 0, 0, time.UTC)) ||
		!iphone.WhenChanged.Equal(time.Date(2024, 11, 1, 12, 0, 0, 0, time.UTC)) ||
		!iphone.LastSync.Equal(time.Date(2024, 11, 2, 12, 0, 0, 0, time.UTC)) ||
		!strings.Contains(iphone.Identity, "iPhone§ApplF17ABCDEF12") {
		t.Errorf("iphone %+v", iphone)
	}
	if samsung.AccessState != engine.StateQuarantined || samsung.AccessReason != "FutureReason" || !samsung.LastSync.IsZero() ||
		!samsung.FirstSync.Equal(time.Date(2024, 10, 1, 10, 0, 0, 0, time.UTC)) ||
		!samsung.WhenChanged.Equal(time.Date(2024, 11, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("samsung %+v", samsung)
	}
}

func mailboxEqual(a, b engine.Mailbox) bool {
	return a.UPN == b.UPN && a.PrimarySMTP == b.PrimarySMTP && slices.Equal(a.Addresses, b.Addresses) &&
		slices.Equal(a.Allowed, b.Allowed) && slices.Equal(a.Blocked, b.Blocked)
}

func TestIncompleteOutputIsAProblem(t *testing.T) {
	tests := []struct {
		name   string
		lines  string
		stderr stderrRecords
		want   string
	}{
		{name: "no end line", lines: `{"t":"begin","script":"inventory/1"}`, want: "ended before the script's end line"},
		{name: "no begin line", lines: `{"t":"end","devices":0}`, want: "lacks the script's begin line"},
		{name: "another script", lines: `{"t":"begin","script":"apply/1"}` + "\n" + `{"t":"end"}`, want: `output of script "apply/1"`},
		{name: "device count differs", lines: `{"t":"begin","script":"inventory/1"}` + "\n" + `{"t":"end","devices":3}`, want: "listed 3 devices but 0 were read"},
		{name: "device without its mailbox", lines: `{"t":"begin","script":"inventory/1"}` + "\n" +
			`{"t":"device","DeviceId":"X","mailbox_dn":"CN=Gone"}` + "\n" + `{"t":"end","devices":1}`, want: `its mailbox "CN=Gone" is not in the inventory`},
		{name: "mailbox read error", lines: `{"t":"begin","script":"inventory/1"}` + "\n" +
			`{"t":"error","mailbox_dn":"CN=X","message":"The operation couldn't be performed"}` + "\n" + `{"t":"end","devices":0}`, want: "mailbox CN=X could not be read"},
		{name: "an error record on stderr", lines: `{"t":"begin","script":"inventory/1"}` + "\n" + `{"t":"end","devices":0}`,
			stderr: stderrRecords{Errors: []string{"Get-Mailbox : boom"}}, want: "powershell reported an error: Get-Mailbox : boom"},
		{name: "a truncated result", lines: `{"t":"begin","script":"inventory/1"}` + "\n" + `{"t":"end","devices":0}`,
			stderr: stderrRecords{Warnings: []string{`By default, only the first 1000 items are returned. Use the ResultSize parameter`}}, want: "exchange truncated a result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newInventoryBuilder(engine.InventoryQuery{}, slog.New(slog.DiscardHandler))
			if err := readLines(strings.NewReader(tt.lines), &runResult{}, b.line); err != nil {
				t.Fatal(err)
			}
			inv := b.finish(&tt.stderr)
			if inv.Complete() || !strings.Contains(strings.Join(inv.Problems, "\n"), tt.want) {
				t.Errorf("problems %q, want one containing %q", inv.Problems, tt.want)
			}
		})
	}
}

func TestMalformedLinesAreCountedPastTheCap(t *testing.T) {
	b := newInventoryBuilder(engine.InventoryQuery{}, slog.New(slog.DiscardHandler))
	for i := 1; i <= maxLineProblems+5; i++ {
		b.line(i, []byte("garbage"))
	}
	inv := b.finish(&stderrRecords{})
	if n := len(inv.Problems); n != maxLineProblems+3 { // the cap, "5 more", and the missing begin and end lines
		t.Errorf("%d problems: %q", n, inv.Problems)
	}
}

func TestRawDevicesKeepTheContractShape(t *testing.T) {
	first := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	inv := &engine.ExchangeInventory{Devices: []engine.EASDevice{
		{Mailbox: "anna@contoso.com", PrimarySMTP: "anna@contoso.com", Identity: "contoso.com/Users/Anna/ExchangeActiveSyncDevices/iPhone§A1",
			DeviceID: "A1", DeviceType: "iPhone", DeviceModel: "iPhone17C3", DeviceOS: "iOS 18.3.2 22D82", UserAgent: "Apple-iPhone17C3/2204.82",
			ClientType: "EAS", AccessState: engine.StateAllowed, AccessReason: "Global", FirstSync: first},
	}}
	got, err := json.Marshal(RawDevices(inv))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"mailbox":"anna@contoso.com","primary_smtp":"anna@contoso.com","identity":"contoso.com/Users/Anna/ExchangeActiveSyncDevices/iPhone§A1",` +
		`"device_id":"A1","device_type":"iPhone","device_model":"iPhone17C3","device_os":"iOS 18.3.2 22D82","user_agent":"Apple-iPhone17C3/2204.82",` +
		`"client_type":"EAS","access_state":"Allowed","access_reason":"Global","first_sync":"2026-10-01T08:00:00Z","last_sync":null,"when_changed":null}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if b, _ := json.Marshal(RawDevices(&engine.ExchangeInventory{})); string(b) != "[]" {
		t.Errorf("no devices: %s", b)
	}
}
