package exchange_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"easgate/engine"
	"easgate/engine/exchange"
	"easgate/engine/sim/org"
)

// hostilePieces are what an attacker (or a strange device) puts in a
// field that a careless script would splice into code.
var hostilePieces = []string{
	`"`, `'`, "`", ";", "$(Get-Date)", "${env:USERNAME}", "$p.password", "@()", "|", "&", "&&", "||", "\n", "\r\n", "\r",
	"\t", "\x00", "\x01", "\x1b[31m", "#", "<#", "#>", "@'", "'@", `@"`, `"@`, "\\", `\"`, "\\u0022", "%PATH%", "^",
	`<S S="Error">`, "_x000D_", "]]>", "&amp;", "\u202e", "\u2028", "\u00a0", "\ufeff", "😀", "漢字", "Zoë", "İ", "ß",
	"'; Remove-Mailbox -Identity * -Confirm:$false; '", "\"); Set-CASMailbox x -ActiveSyncBlockedDeviceIDs $null; (\"",
	"$(Invoke-Expression 'calc')", "-EncodedCommand", "}finally{", "# easgate-script: apply/1",
}

// hostile returns a string of hostile pieces and random runes, at most
// max bytes long (cut on a rune boundary); fill makes it max bytes.
func hostile(rng *rand.Rand, max int, fill bool) string {
	var b strings.Builder
	for b.Len() < max {
		if rng.IntN(3) == 0 {
			b.WriteRune(rune(0x20 + rng.IntN(0x2fff)))
		} else {
			b.WriteString(hostilePieces[rng.IntN(len(hostilePieces))])
		}
		if !fill && rng.IntN(4) == 0 {
			break
		}
	}
	s := b.String()
	for len(s) > max {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if s == "" || strings.TrimSpace(s) == "" {
		s = "x" + s
	}
	return s
}

// hostileOrg builds an organisation whose display names and device fields
// are hostile: device IDs within Exchange's 32 characters, other fields up
// to 10 KB.
func hostileOrg(seed uint64, users int) *org.Org {
	rng := rand.New(rand.NewPCG(seed, seed*31+7))
	o := org.New("contoso.com", "tenant")
	o.Mu.Lock()
	defer o.Mu.Unlock()
	for i := range users {
		upn := fmt.Sprintf("user%03d@contoso.com", i)
		u := &org.User{ID: fmt.Sprintf("u%d", i), DisplayName: fmt.Sprintf("%s %03d", hostile(rng, 60, false), i), UPN: upn, PrimarySMTP: upn,
			ProxyAddresses: []string{"SMTP:" + upn}}
		o.AddUser(u)
		seen := map[string]bool{}
		for range 1 + rng.IntN(3) {
			field := func() string { return hostile(rng, 200, false) }
			if rng.IntN(4) == 0 {
				field = func() string { return hostile(rng, 10<<10, true) } // 10 KB
			}
			id := strings.TrimSpace(hostile(rng, 32, rng.IntN(2) == 0))
			if id == "" || seen[strings.ToLower(id)] {
				continue
			}
			seen[strings.ToLower(id)] = true
			_ = o.AddPartnership(upn, &org.Partnership{DeviceID: id, DeviceType: field(), DeviceModel: field(),
				DeviceOS: field(), UserAgent: field(), FirstSync: now.Add(-time.Duration(rng.IntN(1000)) * time.Hour),
				LastSync: now, WhenChanged: now})
		}
	}
	return o
}

// TestHostileFieldsRoundTrip is a property test: whatever device IDs,
// models, user agents and display names hold (quotes, $(), backticks,
// semicolons, newlines, Unicode, 10 KB strings), the scripts sent never
// change, and the values come back exactly, through inventory, apply and
// inventory again.
func TestHostileFieldsRoundTrip(t *testing.T) {
	t.Parallel()
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	known := map[string]bool{}
	for _, s := range exchange.Scripts() {
		known[s.Text] = true
	}
	for seed := range uint64(rounds) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			o := hostileOrg(seed, 25)
			e := newEnv(t, o)
			ctx := context.Background()
			inv, err := e.client.Inventory(ctx, engine.InventoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			checkInventory(t, inv, o, time.Time{})
			longest := 0
			for _, d := range inv.Devices {
				longest = max(longest, len(d.DeviceModel), len(d.UserAgent))
			}
			if longest < 10<<10-8 {
				t.Errorf("the longest field is %d bytes: the org lacks the 10 KB strings this test needs", longest)
			}
			var changes []engine.Change
			for _, d := range inv.Devices {
				changes = append(changes, engine.Change{Mailbox: d.Mailbox, DeviceID: d.DeviceID, List: engine.ListBlocked, Op: engine.OpAdd})
			}
			results, err := e.client.ApplyChanges(ctx, changes)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if !r.OK {
					t.Errorf("blocking %q failed: %s", r.Change.DeviceID, r.Error)
				}
			}
			inv, err = e.client.Inventory(ctx, engine.InventoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			checkInventory(t, inv, o, time.Time{})
			blocked := map[string][]string{}
			for _, d := range inv.Devices {
				blocked[d.Mailbox] = append(blocked[d.Mailbox], d.DeviceID)
				if d.AccessState != engine.StateBlocked || d.AccessReason != "Individual" {
					t.Errorf("%q reads %s/%s after blocking", d.DeviceID, d.AccessState, d.AccessReason)
				}
			}
			for _, m := range inv.Mailboxes {
				if !slices.Equal(m.Blocked, blocked[m.UPN]) {
					t.Errorf("%s blocks %q, want exactly %q", m.UPN, m.Blocked, blocked[m.UPN])
				}
			}
			for _, s := range e.host.Scripts() {
				if !known[s] {
					t.Errorf("the server received a script text the adapter does not list:\n%.300s", s)
				}
			}
			if n := len(e.host.Scripts()); n != 3 {
				t.Errorf("%d scripts received, want 3", n)
			}
		})
	}
}

// TestOversizedDeviceIDIsReadButNeverSent: a device ID longer than
// Exchange stores (10 KB) comes through the inventory whole, and a change
// of it is refused before anything is sent.
func TestOversizedDeviceIDIsReadButNeverSent(t *testing.T) {
	o := org.New("contoso.com", "tenant")
	o.AddUser(&org.User{ID: "u1", DisplayName: "Anna", UPN: "anna@contoso.com", PrimarySMTP: "anna@contoso.com"})
	long := strings.Repeat(`$(x)"';`+"\n😀", 10<<10/12)
	o.Users[0].Partnerships = append(o.Users[0].Partnerships, &org.Partnership{DeviceID: long, DeviceType: "iPhone", ClientType: org.ClientEAS,
		FirstSync: now, LastSync: now, WhenChanged: now})
	e := newEnv(t, o)
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
	starts := e.host.Starts()
	results, err := e.client.ApplyChanges(context.Background(), []engine.Change{{Mailbox: "anna@contoso.com", DeviceID: long, List: engine.ListBlocked, Op: engine.OpAdd}})
	if err != nil || results[0].OK || !strings.Contains(results[0].Error, "Exchange stores at most 32") {
		t.Fatalf("apply: %v %+v", err, results)
	}
	if e.host.Starts() != starts {
		t.Error("a change Exchange would refuse was sent")
	}
}
