package intune

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"easgate/engine"
	"easgate/engine/sim/org"
)

// Groups of the scope test's organisation.
const (
	gMobile   = "a0000000-0000-4000-8000-000000000001" // include: Staff and Field nested
	gStaff    = "a0000000-0000-4000-8000-000000000002" // in Mobile
	gField    = "a0000000-0000-4000-8000-000000000003" // in Staff: two levels down
	gExempt   = "a0000000-0000-4000-8000-000000000004" // exclude
	gNotThere = "a0000000-0000-4000-8000-0000000000ff"
)

// scopeOrg is an organisation whose Exchange mailboxes and Entra users do
// not always share an address: the old connector's "primary SMTP must
// equal UPN" would lose some of them.
func scopeOrg(extra int) *org.Org {
	o := org.New("contoso.com", "1b2c3d4e-0000-4000-8000-00000000000a")
	o.Mu.Lock()
	defer o.Mu.Unlock()
	users := []*org.User{
		// Matched by UPN.
		{ID: "u0000000-0000-4000-8000-000000000001", UPN: "anna@contoso.com", PrimarySMTP: "anna@contoso.com",
			ProxyAddresses: []string{"SMTP:anna@contoso.com"}},
		// Matched by primary SMTP: the on-premises UPN has another suffix.
		{ID: "u0000000-0000-4000-8000-000000000002", UPN: "ben.novak@contoso.onmicrosoft.com", PrimarySMTP: "ben@contoso.com",
			ProxyAddresses: []string{"SMTP:ben@contoso.com"}},
		// Reachable only by a proxy address: neither the UPN nor mail is
		// the mailbox's.
		{ID: "u0000000-0000-4000-8000-000000000003", UPN: "c.dubois@contoso.onmicrosoft.com", PrimarySMTP: "c.dubois@contoso.com",
			ProxyAddresses: []string{"SMTP:c.dubois@contoso.com", "smtp:chloe@contoso.com", "x500:/o=Contoso/ou=Exchange/cn=Recipients/cn=chloe"}},
		// Nested two levels down, and also excluded: exclusion wins.
		{ID: "u0000000-0000-4000-8000-000000000004", UPN: "david@contoso.com", PrimarySMTP: "david@contoso.com"},
		// In no included group.
		{ID: "u0000000-0000-4000-8000-000000000005", UPN: "emma@contoso.com", PrimarySMTP: "emma@contoso.com"},
		// Two levels down, included.
		{ID: "u0000000-0000-4000-8000-000000000006", UPN: "felix@contoso.com", PrimarySMTP: "felix@contoso.com"},
	}
	for _, u := range users {
		u.DisplayName = u.UPN
		o.AddUser(u)
	}
	field := &org.Group{ID: gField, Members: []string{users[3].ID, users[5].ID}}
	staff := &org.Group{ID: gStaff, Members: []string{users[1].ID, users[2].ID, gField}}
	// Enough extra staff that members come in several pages.
	for i := range extra {
		u := &org.User{ID: fmt.Sprintf("e0000000-0000-4000-8000-%012d", i), UPN: fmt.Sprintf("staff%d@contoso.com", i)}
		u.PrimarySMTP, u.DisplayName = u.UPN, u.UPN
		o.AddUser(u)
		staff.Members = append(staff.Members, u.ID)
	}
	// Mobile holds Field directly and through Staff, and Anna twice:
	// transitive members come once each.
	o.AddGroup(&org.Group{ID: gMobile, Members: []string{users[0].ID, gStaff, users[0].ID, gField}})
	o.AddGroup(staff)
	o.AddGroup(field)
	o.AddGroup(&org.Group{ID: gExempt, Members: []string{users[3].ID}})
	return o
}

func TestScopeResolution(t *testing.T) {
	e := newEnv(t, envOptions{org: scopeOrg(25), config: func(c *Config) { c.PageSize = 7 }})
	ctx := t.Context()
	include, err := e.client.GroupMembers(ctx, gMobile)
	if err != nil {
		t.Fatal(err)
	}
	exclude, err := e.client.GroupMembers(ctx, gExempt)
	if err != nil {
		t.Fatal(err)
	}
	if len(include) != 5+25 || len(exclude) != 1 {
		t.Fatalf("%d included and %d excluded users, want 30 and 1", len(include), len(exclude))
	}
	if pages := e.sim.Stats().Pages; pages != 5+1 {
		t.Fatalf("%d member pages, want 6 (30 users in pages of 7, and one)", pages)
	}
	for _, u := range include {
		if u.ID == "u0000000-0000-4000-8000-000000000003" &&
			!slices.Equal(u.ProxyAddresses, []string{"SMTP:c.dubois@contoso.com", "smtp:chloe@contoso.com", "x500:/o=Contoso/ou=Exchange/cn=Recipients/cn=chloe"}) {
			t.Fatalf("proxy addresses of %s: %q", u.UserPrincipalName, u.ProxyAddresses)
		}
	}

	// The engine decides scope from these users and Exchange's mailboxes.
	mailboxes := []engine.Mailbox{
		{UPN: "anna@contoso.com", PrimarySMTP: "anna@contoso.com"},
		{UPN: "ben@contoso.local", PrimarySMTP: "ben@contoso.com"},
		{UPN: "chloe@contoso.local", PrimarySMTP: "Chloe@Contoso.com"},
		{UPN: "david@contoso.com", PrimarySMTP: "david@contoso.com"},
		{UPN: "emma@contoso.com", PrimarySMTP: "emma@contoso.com"},
		{UPN: "felix@contoso.com", PrimarySMTP: "felix@contoso.com"},
	}
	w := &engine.World{
		Org:              engine.OrgSettings{DefaultAccessLevel: "Allow"},
		Mailboxes:        map[string]engine.Mailbox{},
		EAS:              map[engine.DeviceKey]engine.EASDevice{},
		MDM:              map[string]*engine.MDMDevice{},
		Scope:            &engine.Scope{Include: include, Exclude: exclude},
		ExchangeComplete: true, IntuneComplete: true,
	}
	for _, m := range mailboxes {
		w.Mailboxes[strings.ToLower(m.UPN)] = m
		d := engine.EASDevice{Mailbox: m.UPN, PrimarySMTP: m.PrimarySMTP, DeviceID: "DEV" + strings.ToUpper(m.UPN[:3]),
			DeviceType: "iPhone", ClientType: "EAS", AccessState: engine.StateAllowed, FirstSync: simNow.AddDate(0, -1, 0)}
		w.EAS[d.Key()] = d
	}
	out := engine.BuildPlan(engine.PlanInput{Now: simNow, Kind: engine.RunFull, Policy: engine.DefaultPolicy(), World: w})
	tests := []struct {
		name    string
		mailbox string
		want    bool
	}{
		{name: "matched by UPN", mailbox: "anna@contoso.com", want: true},
		{name: "matched by primary SMTP", mailbox: "ben@contoso.local", want: true},
		{name: "matched by a proxy address only", mailbox: "chloe@contoso.local", want: true},
		{name: "nested and excluded: exclusion wins", mailbox: "david@contoso.com", want: false},
		{name: "in no included group", mailbox: "emma@contoso.com", want: false},
		{name: "two levels of nesting", mailbox: "felix@contoso.com", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec *engine.DeviceRecord
			for _, r := range out.Records {
				if strings.EqualFold(r.Mailbox, tt.mailbox) {
					rec = &r
				}
			}
			if rec == nil {
				t.Fatalf("no record for %s", tt.mailbox)
			}
			if rec.InScope != tt.want {
				t.Fatalf("%s in scope = %v, want %v (%s)", tt.mailbox, rec.InScope, tt.want, rec.Decision.Reason)
			}
		})
	}
}

func TestScopeGroupNotFoundNamesIt(t *testing.T) {
	e := newEnv(t, envOptions{org: scopeOrg(0)})
	_, err := e.client.GroupMembers(t.Context(), gNotThere)
	if !errors.Is(err, engine.ErrGroupNotFound) || !strings.Contains(err.Error(), gNotThere) {
		t.Fatalf("err = %v, want ErrGroupNotFound naming %s", err, gNotThere)
	}
}
