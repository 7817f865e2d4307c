package org

import (
	"testing"
	"time"
)

func TestGenerateIsDeterministicAndPlausible(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a := Generate(Options{Users: 200, Seed: 1, Now: now})
	b := Generate(Options{Users: 200, Seed: 1, Now: now})
	ca, cb := a.Count(), b.Count()
	if ca != cb {
		t.Fatalf("same seed, different orgs: %+v vs %+v", ca, cb)
	}
	if ca.EAS <= 200 || ca.EAS > 400 {
		t.Errorf("EAS partnerships = %d, want about 1.5 per user", ca.EAS)
	}
	if ca.ReportedEASIDs == 0 || ca.ReportedEASIDs >= ca.EAS {
		t.Errorf("reported EAS IDs = %d of %d: want most but not all", ca.ReportedEASIDs, ca.EAS)
	}
	ids := map[string]bool{}
	for _, u := range a.Users {
		if a.UserByUPN(u.UPN) != u || a.UserByAddress(u.PrimarySMTP) != u {
			t.Fatalf("user %s not found by its addresses", u.UPN)
		}
		for _, p := range u.Partnerships {
			if len(p.DeviceID) > MaxDeviceIDLen {
				t.Errorf("device ID %q longer than Exchange allows", p.DeviceID)
			}
			if ids[p.DeviceID] {
				t.Errorf("device ID %q generated twice", p.DeviceID)
			}
			ids[p.DeviceID] = true
		}
	}
	if got := len(a.TransitiveUsers(GroupMobileUsers)); got != 200 {
		t.Errorf("nested group has %d users, want all 200", got)
	}
}

func TestAccessOfFollowsExchangePrecedence(t *testing.T) {
	o := New("contoso.com", "t")
	o.DefaultAccessLevel = "Quarantine"
	o.Rules = []Rule{
		{Characteristic: "DeviceType", QueryString: "iPhone", AccessLevel: "Allow"},
		{Characteristic: "DeviceModel", QueryString: "SM-G991B", AccessLevel: "Block"},
		{Characteristic: "DeviceType", QueryString: "SAMSUNGSMG991B", AccessLevel: "Quarantine"},
	}
	u := &User{ID: "u", UPN: "a@contoso.com", PrimarySMTP: "a@contoso.com"}
	o.AddUser(u)
	iphone := &Partnership{DeviceID: "ApplA", DeviceType: "iPhone"}
	samsung := &Partnership{DeviceID: "SECB", DeviceType: "SAMSUNGSMG991B", DeviceModel: "SM-G991B"}
	pixel := &Partnership{DeviceID: "androidc1", DeviceType: "Android"}
	tests := []struct {
		name             string
		p                *Partnership
		allowed, blocked []string
		policyNotMet     bool
		state, reason    string
	}{
		{"rule allows", iphone, nil, nil, false, StateAllowed, ReasonDeviceRule},
		{"block rule beats quarantine rule", samsung, nil, nil, false, StateBlocked, ReasonDeviceRule},
		{"org default", pixel, nil, nil, false, StateQuarantined, ReasonGlobal},
		{"allowed list beats block rule", samsung, []string{"secb"}, nil, false, StateAllowed, ReasonIndividual},
		{"blocked list beats allowed list", iphone, []string{"ApplA"}, []string{"APPLA"}, false, StateBlocked, ReasonIndividual},
		{"policy beats everything", iphone, []string{"ApplA"}, nil, true, StateBlocked, ReasonPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u.Allowed, u.Blocked = tt.allowed, tt.blocked
			tt.p.PolicyNotMet = tt.policyNotMet
			defer func() { tt.p.PolicyNotMet = false }()
			state, reason := o.AccessOf(u, tt.p)
			if state != tt.state || reason != tt.reason {
				t.Errorf("AccessOf = %s/%s, want %s/%s", state, reason, tt.state, tt.reason)
			}
		})
	}
}

func TestChangeListsIsIdempotentAndCaseInsensitive(t *testing.T) {
	o := New("contoso.com", "t")
	u := &User{ID: "u", UPN: "a@corp.contoso.com", PrimarySMTP: "a@contoso.com", Allowed: []string{"ADMIN1"}}
	o.AddUser(u)
	if err := o.ChangeLists("A@CONTOSO.COM", ListChange{Add: []string{"x1", "X1"}}, ListChange{Remove: []string{"absent"}}); err != nil {
		t.Fatal(err)
	}
	if len(u.Allowed) != 2 || u.Allowed[0] != "ADMIN1" {
		t.Errorf("allowed = %v, want the admin's entry kept and x1 added once", u.Allowed)
	}
	if err := o.ChangeLists("nobody@contoso.com", ListChange{}, ListChange{}); err == nil {
		t.Error("unknown mailbox: want an error")
	}
	if err := o.ChangeLists(u.UPN, ListChange{Add: []string{"0123456789012345678901234567890123"}}, ListChange{}); err == nil {
		t.Error("34-character device ID: want Exchange's length error")
	}
}
