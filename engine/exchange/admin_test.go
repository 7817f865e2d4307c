package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/exchange"
	simexchange "easgate/engine/sim/exchange"
	"easgate/engine/sim/org"
)

// firstEAS returns a user with an EAS partnership and the partnership.
func firstEAS(t *testing.T, o *org.Org) (*org.User, *org.Partnership) {
	t.Helper()
	o.Mu.RLock()
	defer o.Mu.RUnlock()
	for _, u := range o.Users {
		for _, p := range u.Partnerships {
			if p.ClientType == org.ClientEAS && len(u.Allowed) == 0 && len(u.Blocked) == 0 {
				return u, p
			}
		}
	}
	t.Fatal("no EAS partnership in the org")
	return nil, nil
}

func TestRemoveDevice(t *testing.T) {
	o := generated(20)
	e := newEnv(t, o)
	u, p := firstEAS(t, o)
	ctx := context.Background()
	if err := e.client.RemoveDevice(ctx, strings.ToUpper(u.UPN), strings.ToLower(p.DeviceID)); err != nil {
		t.Fatal(err)
	}
	o.Mu.RLock()
	gone := u.Partnership(p.DeviceID) == nil
	o.Mu.RUnlock()
	if !gone {
		t.Fatal("the partnership is still there")
	}
	inv, err := e.client.Inventory(ctx, engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range inv.Devices {
		if d.Key() == engine.KeyOf(u.UPN, p.DeviceID) {
			t.Error("the inventory still lists the removed partnership")
		}
	}
	tests := []struct {
		name, mailbox, device string
		want                  string
	}{
		{name: "removed already", mailbox: u.UPN, device: p.DeviceID, want: "no partnership with this device ID"},
		{name: "no such mailbox", mailbox: "nobody@contoso.com", device: p.DeviceID, want: "couldn't be found"},
		{name: "no device ID", mailbox: u.UPN, device: " ", want: "needs its mailbox and device ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.client.RemoveDevice(ctx, tt.mailbox, tt.device)
			if !errors.Is(err, engine.ErrNotFound) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrNotFound with %q", err, tt.want)
			}
		})
	}
}

func TestRemoveDeviceWithinTheMonthlyBudget(t *testing.T) {
	o := org.New("contoso.com", "tenant")
	o.AddUser(&org.User{ID: "u1", DisplayName: "Anna", UPN: "anna@contoso.com", PrimarySMTP: "anna@contoso.com"})
	for i := range 4 {
		if err := o.AddPartnership("anna@contoso.com", &org.Partnership{DeviceID: fmt.Sprintf("ApplANNA%02d", i), DeviceType: "iPhone",
			FirstSync: now.Add(-time.Hour), LastSync: now}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	clock := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	e := newEnv(t, o, func(c *envConfig) {
		c.exchange.MaxDeviceDeletesPerMonth = 2
		c.exchange.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	})
	ctx := context.Background()
	for i := range 2 {
		if err := e.client.RemoveDevice(ctx, "anna@contoso.com", fmt.Sprintf("ApplANNA%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	err := e.client.RemoveDevice(ctx, "anna@contoso.com", "ApplANNA02")
	if !errors.Is(err, exchange.ErrThrottled) || !strings.Contains(err.Error(), "EasMaxDeviceDeletesPerMonth") {
		t.Fatalf("third removal in a month: err = %v, want ErrThrottled", err)
	}
	mu.Lock()
	clock = clock.AddDate(0, 0, 5) // December
	mu.Unlock()
	if err := e.client.RemoveDevice(ctx, "anna@contoso.com", "ApplANNA02"); err != nil {
		t.Fatalf("in the next month: %v", err)
	}
}

func TestWipeShowsInStatistics(t *testing.T) {
	tests := []struct {
		name        string
		accountOnly bool
		field, want string
	}{
		{name: "whole device", field: "DeviceWipeRequestTime", want: "wipe requested "},
		{name: "account only", accountOnly: true, field: "AccountOnlyDeviceWipeRequestTime", want: "account-only wipe requested "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := generated(10)
			e := newEnv(t, o)
			u, p := firstEAS(t, o)
			ctx := context.Background()
			st, err := e.client.DeviceStatistics(ctx, u.UPN, p.DeviceID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != "DeviceOk" || st.WipeStatus != "" || !st.LastSuccessSync.Equal(p.LastSync) || st.Fields["DeviceId"] != p.DeviceID {
				t.Errorf("before the wipe: %+v", st)
			}
			if err := e.client.WipeDevice(ctx, u.UPN, p.DeviceID, tt.accountOnly); err != nil {
				t.Fatal(err)
			}
			st, err = e.client.DeviceStatistics(ctx, u.UPN, p.DeviceID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != "DeviceWipePending" || !strings.HasPrefix(st.WipeStatus, tt.want) || st.Fields[tt.field] == "" ||
				st.Fields["LastDeviceWipeRequestor"] != user {
				t.Errorf("after the wipe: status %q wipe %q fields %v", st.Status, st.WipeStatus, st.Fields)
			}
			o.Mu.RLock()
			defer o.Mu.RUnlock()
			if p.WipeRequested.IsZero() || p.WipeAccountOnly != tt.accountOnly {
				t.Errorf("the org's partnership: requested %v account only %v", p.WipeRequested, p.WipeAccountOnly)
			}
		})
	}
}

func TestSetOrgDefaultHitsEveryDeviceWithoutAnEntry(t *testing.T) {
	o := generated(40)
	e := newEnv(t, o)
	ctx := context.Background()
	if err := e.client.SetOrgDefault(ctx, "quarantine"); err != nil {
		t.Fatal(err)
	}
	inv, err := e.client.Inventory(ctx, engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Org.DefaultAccessLevel != "Quarantine" {
		t.Errorf("DefaultAccessLevel %q", inv.Org.DefaultAccessLevel)
	}
	global, individual := 0, 0
	for _, d := range inv.Devices {
		switch d.AccessReason {
		case "Global":
			global++
			if d.AccessState != engine.StateQuarantined {
				t.Errorf("%s: %s by the org default", d.DeviceID, d.AccessState)
			}
		case "Individual":
			individual++
		}
	}
	if global == 0 || individual == 0 {
		t.Errorf("%d devices under the org default, %d with list entries: the org lacks the mix this test needs", global, individual)
	}
	starts := e.host.Starts()
	for _, bad := range []string{"Deny", ""} {
		if err := e.client.SetOrgDefault(ctx, bad); !errors.Is(err, exchange.ErrConfig) {
			t.Errorf("level %q: err = %v, want ErrConfig", bad, err)
		}
	}
	if e.host.Starts() != starts {
		t.Error("a bad level reached Exchange")
	}
}

func TestDeviceRules(t *testing.T) {
	o := generated(40)
	e := newEnv(t, o)
	_, p := firstEAS(t, o)
	ctx := context.Background()
	rule := engine.DeviceAccessRule{Characteristic: "devicemodel", QueryString: p.DeviceModel, AccessLevel: "block"}
	stateOf := func() (engine.AccessState, string) {
		t.Helper()
		inv, err := e.client.Inventory(ctx, engine.InventoryQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range inv.Devices {
			if d.DeviceID == p.DeviceID {
				return d.AccessState, d.AccessReason
			}
		}
		t.Fatal("device missing")
		return "", ""
	}
	rules := func() []org.Rule {
		o.Mu.RLock()
		defer o.Mu.RUnlock()
		return slices.Clone(o.Rules)
	}
	before := len(rules())
	if err := e.client.SetDeviceRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	if st, why := stateOf(); st != engine.StateBlocked || why != "DeviceRule" {
		t.Errorf("with a blocking rule: %s/%s", st, why)
	}
	rule.AccessLevel = "Quarantine"
	if err := e.client.SetDeviceRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	if rs := rules(); len(rs) != before+1 || rs[len(rs)-1] != (org.Rule{Characteristic: "DeviceModel", QueryString: p.DeviceModel, AccessLevel: "Quarantine"}) {
		t.Errorf("rules %+v: want the one rule changed, not a second", rs)
	}
	if st, _ := stateOf(); st != engine.StateQuarantined {
		t.Errorf("with a quarantining rule: %s", st)
	}
	for range 2 { // removing is idempotent
		if err := e.client.RemoveDeviceRule(ctx, rule); err != nil {
			t.Fatal(err)
		}
	}
	if len(rules()) != before {
		t.Errorf("rules %+v after removing", rules())
	}
	if st, why := stateOf(); why == "DeviceRule" {
		t.Errorf("after removing the rule: %s/%s", st, why)
	}
	for _, bad := range []engine.DeviceAccessRule{
		{Characteristic: "Colour", QueryString: "x", AccessLevel: "Block"},
		{Characteristic: "DeviceModel", QueryString: "", AccessLevel: "Block"},
		{Characteristic: "DeviceModel", QueryString: "x", AccessLevel: "Maybe"},
	} {
		if err := e.client.SetDeviceRule(ctx, bad); !errors.Is(err, exchange.ErrConfig) {
			t.Errorf("rule %+v: err = %v, want ErrConfig", bad, err)
		}
	}
}

func TestDiscoverServers(t *testing.T) {
	e := newEnv(t, generated(2), func(c *envConfig) {
		c.exchange.Servers = []simexchange.ServerInfo{
			{Name: "EX01", Fqdn: "ex01.contoso.com", Site: "Berlin", ServerRole: "Mailbox", IsClientAccessServer: true, AdminDisplayVersion: "Version 15.2 (Build 1544.4)"},
			{Name: "EDGE01", Fqdn: "edge01.contoso.com", Site: "Berlin", ServerRole: "Edge"},
			{Name: "EX2013", Fqdn: "ex2013.contoso.com", Site: "Paris", ServerRole: "Mailbox, ClientAccess", AdminDisplayVersion: "Version 15.0 (Build 1497.2)"},
		}
	})
	found, err := e.client.DiscoverServers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []exchange.ServerInfo{
		{Name: "EX01", Fqdn: "ex01.contoso.com", Site: "Berlin", Roles: "Mailbox", Version: "Version 15.2 (Build 1544.4)"},
		{Name: "EX2013", Fqdn: "ex2013.contoso.com", Site: "Paris", Roles: "Mailbox, ClientAccess", Version: "Version 15.0 (Build 1497.2)"},
	}
	if !slices.Equal(found, want) || !slices.Equal(e.client.Discovered(), want) {
		t.Errorf("found %+v, kept %+v; want %+v", found, e.client.Discovered(), want)
	}
}

func TestAdminCmdletTheRoleLacks(t *testing.T) {
	o := generated(5)
	e := newEnv(t, o, func(c *envConfig) { c.exchange.Denied = []string{"Remove-MobileDevice"} })
	u, p := firstEAS(t, o)
	err := e.client.RemoveDevice(context.Background(), u.UPN, p.DeviceID)
	if !errors.Is(err, exchange.ErrScript) || !strings.Contains(err.Error(), "'Remove-MobileDevice' is not recognized") {
		t.Fatalf("err = %v", err)
	}
	// The role still reads: inventory does not call Remove-MobileDevice.
	if _, err := e.client.Inventory(context.Background(), engine.InventoryQuery{}); err != nil {
		t.Errorf("inventory: %v", err)
	}
}
