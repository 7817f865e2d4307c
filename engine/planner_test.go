package engine

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fixture is a small world the planner tests edit.
type fixture struct {
	pol   Policy
	world *World
	links map[DeviceKey]Link
	owned map[OwnedKey]OwnedEntry
	prev  map[DeviceKey]DeviceRecord
	prevM int
	ovr   map[DeviceKey]Override
}

func newFixture() *fixture {
	f := &fixture{
		pol: DefaultPolicy(),
		world: &World{
			Org:              OrgSettings{DefaultAccessLevel: "Allow"},
			Mailboxes:        map[string]Mailbox{},
			EAS:              map[DeviceKey]EASDevice{},
			MDM:              map[string]*MDMDevice{},
			ExchangeComplete: true,
			IntuneComplete:   true,
		},
		links: map[DeviceKey]Link{},
		owned: map[OwnedKey]OwnedEntry{},
		prev:  map[DeviceKey]DeviceRecord{},
	}
	f.pol.Safety = Safety{MaxNewBlocks: 1000}
	return f
}

func (f *fixture) mailbox(upn string, allowed, blocked []string) {
	f.world.Mailboxes[strings.ToLower(upn)] = Mailbox{UPN: upn, PrimarySMTP: upn, Allowed: allowed, Blocked: blocked}
}

func (f *fixture) eas(upn, id, model string, firstSync time.Time) {
	if _, ok := f.world.Mailboxes[strings.ToLower(upn)]; !ok {
		f.mailbox(upn, nil, nil)
	}
	d := EASDevice{Mailbox: upn, PrimarySMTP: upn, DeviceID: id, DeviceType: "iPhone", DeviceModel: model,
		DeviceOS: "iOS 18.1", ClientType: "EAS", FirstSync: firstSync, AccessState: StateAllowed, AccessReason: "Global"}
	f.world.EAS[d.Key()] = d
}

func (f *fixture) mdm(id, upn, easID string, c Compliance) {
	f.world.MDM[id] = &MDMDevice{ID: id, UserPrincipalName: upn, Email: upn, EASDeviceID: easID, Compliance: c,
		OperatingSystem: "iOS", Enrolled: t0.Add(-24 * time.Hour)}
}

func (f *fixture) own(upn string, l List, id string) {
	e := OwnedEntry{Mailbox: upn, DeviceID: id, List: l}
	f.owned[e.Key()] = e
}

func (f *fixture) overrides(os ...Override) {
	if f.ovr == nil {
		f.ovr = map[DeviceKey]Override{}
	}
	for _, o := range os {
		f.ovr[o.Device] = o
	}
}

func (f *fixture) plan() *PlanOutput {
	return BuildPlan(PlanInput{Now: t0, Serial: 7, Kind: RunFull, Policy: f.pol, World: f.world,
		Links: f.links, Owned: f.owned, Prev: f.prev, PrevMDMCount: f.prevM, Overrides: f.ovr})
}

func changeStrings(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.Op)+" "+string(c.List)+" "+c.Mailbox+"/"+c.DeviceID)
	}
	slices.Sort(out)
	return out
}

func TestPlannerDecisions(t *testing.T) {
	old := t0.Add(-30 * 24 * time.Hour)
	tests := []struct {
		name    string
		setup   func(f *fixture)
		code    ReasonCode
		access  Access
		exempt  bool
		changes []string
	}{
		{
			name:    "merged and compliant is allowed",
			setup:   func(f *fixture) { f.mdm("m1", "anna@contoso.com", "APPL1", ComplianceCompliant) },
			code:    ReasonCompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name:    "merged by EAS ID in another case",
			setup:   func(f *fixture) { f.mdm("m1", "anna@contoso.com", "appl1", ComplianceInGracePeriod) },
			code:    ReasonCompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name:    "merged and noncompliant is blocked",
			setup:   func(f *fixture) { f.mdm("m1", "anna@contoso.com", "appl1", ComplianceNoncompliant) },
			code:    ReasonNoncompliant,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name: "noncompliant allowed when block_noncompliant is off",
			setup: func(f *fixture) {
				f.pol.BlockNoncompliant = false
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceNoncompliant)
			},
			code:    ReasonNoncompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name:    "unknown compliance value blocks",
			setup:   func(f *fixture) { f.mdm("m1", "anna@contoso.com", "appl1", Compliance("someFutureState")) },
			code:    ReasonNoncompliant,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name:    "unmerged is blocked by default",
			setup:   func(f *fixture) {},
			code:    ReasonUnmanaged,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name:   "unmerged quarantine leaves it to Exchange",
			setup:  func(f *fixture) { f.pol.UnmanagedAccess = AccessQuarantine },
			code:   ReasonUnmanaged,
			access: AccessQuarantine,
		},
		{
			name:    "unmerged allow only monitors",
			setup:   func(f *fixture) { f.pol.UnmanagedAccess = AccessAllow },
			code:    ReasonUnmanaged,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name:   "admin's own allow entry makes it exempt",
			setup:  func(f *fixture) { f.mailbox("anna@contoso.com", []string{"APPL1"}, nil) },
			code:   ReasonAdminEntry,
			access: AccessNone,
			exempt: true,
		},
		{
			name: "easgate's own entry is not an admin entry",
			setup: func(f *fixture) {
				f.mailbox("anna@contoso.com", []string{"appl1"}, nil)
				f.own("anna@contoso.com", ListAllowed, "appl1")
			},
			code:    ReasonUnmanaged,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1", "remove allowed anna@contoso.com/appl1"},
		},
		{
			name: "admin's block entry is respected, easgate's allow entry removed",
			setup: func(f *fixture) {
				f.mailbox("anna@contoso.com", []string{"appl1"}, []string{"appl1"})
				f.own("anna@contoso.com", ListAllowed, "appl1")
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
			},
			code:    ReasonAdminEntry,
			access:  AccessNone,
			exempt:  true,
			changes: []string{"remove allowed anna@contoso.com/appl1"},
		},
		{
			name: "out of scope: excluded group wins, easgate's entries removed",
			setup: func(f *fixture) {
				f.world.Scope = &Scope{Include: []DirectoryUser{{UserPrincipalName: "anna@contoso.com"}},
					Exclude: []DirectoryUser{{UserPrincipalName: "x@contoso.com", ProxyAddresses: []string{"smtp:ANNA@contoso.com"}}}}
				f.mailbox("anna@contoso.com", nil, []string{"appl1"})
				f.own("anna@contoso.com", ListBlocked, "appl1")
			},
			code:    ReasonOutOfScope,
			access:  AccessNone,
			exempt:  true,
			changes: []string{"remove blocked anna@contoso.com/appl1"},
		},
		{
			name: "out of scope: not in an included group",
			setup: func(f *fixture) {
				f.world.Scope = &Scope{Include: []DirectoryUser{{UserPrincipalName: "bob@contoso.com"}}}
			},
			code:   ReasonOutOfScope,
			access: AccessNone,
			exempt: true,
		},
		{
			name: "in scope through a proxy address only",
			setup: func(f *fixture) {
				f.world.Scope = &Scope{Include: []DirectoryUser{{UserPrincipalName: "a.x@corp.contoso.com", ProxyAddresses: []string{"SMTP:anna@contoso.com"}}}}
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
			},
			code:    ReasonCompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name: "blocking exception beats compliant without override",
			setup: func(f *fixture) {
				f.pol.OverrideDefaultRule = false
				f.pol.PlatformExceptions = []PlatformException{{Characteristic: CharDeviceModel, Value: "iPhone15C2", Access: AccessBlock}}
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
			},
			code:    ReasonException,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name: "override default rule: compliant beats a blocking exception",
			setup: func(f *fixture) {
				f.pol.PlatformExceptions = []PlatformException{{Characteristic: CharDeviceModel, Value: "iPhone15C2", Access: AccessBlock}}
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
			},
			code:    ReasonCompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name: "allow exception lets an unmanaged model in",
			setup: func(f *fixture) {
				f.pol.PlatformExceptions = []PlatformException{{Characteristic: CharDeviceModel, Value: "iPhone15C2", Access: AccessAllow}}
			},
			code:    ReasonException,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name: "exception must match exactly",
			setup: func(f *fixture) {
				f.pol.PlatformExceptions = []PlatformException{{Characteristic: CharDeviceModel, Value: "iphone15c2", Access: AccessAllow}}
			},
			code:    ReasonUnmanaged,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name: "manual link merges an unreported device",
			setup: func(f *fixture) {
				f.mdm("m9", "anna@contoso.com", "", ComplianceCompliant)
				f.links[KeyOf("anna@contoso.com", "appl1")] = Link{Device: KeyOf("anna@contoso.com", "appl1"), MDMID: "m9", Kind: LinkManual}
			},
			code:    ReasonCompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name: "compliant again: easgate's block entry gives way to an allow entry",
			setup: func(f *fixture) {
				f.mailbox("anna@contoso.com", nil, []string{"appl1"})
				f.own("anna@contoso.com", ListBlocked, "appl1")
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
			},
			code:    ReasonCompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1", "remove blocked anna@contoso.com/appl1"},
		},
		{
			name: "quarantine exception removes easgate's allow entry",
			setup: func(f *fixture) {
				f.pol.OverrideDefaultRule = false
				f.pol.PlatformExceptions = []PlatformException{{Characteristic: CharDeviceModel, Value: "iPhone15C2", Access: AccessQuarantine}}
				f.mailbox("anna@contoso.com", []string{"appl1"}, nil)
				f.own("anna@contoso.com", ListAllowed, "appl1")
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
			},
			code:    ReasonException,
			access:  AccessQuarantine,
			changes: []string{"remove allowed anna@contoso.com/appl1"},
		},
		{
			name: "override default rule does not protect a noncompliant device",
			setup: func(f *fixture) {
				f.pol.PlatformExceptions = []PlatformException{{Characteristic: CharDeviceType, Value: "iPhone", Access: AccessQuarantine}}
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceNoncompliant)
			},
			code:   ReasonException,
			access: AccessQuarantine,
		},
		{
			name: "admin override allows an unmanaged device",
			setup: func(f *fixture) {
				f.overrides(Override{Device: KeyOf("anna@contoso.com", "appl1"), Access: AccessAllow, By: "root", Until: t0.Add(time.Hour)})
			},
			code:    ReasonAdminOverride,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name: "admin override blocks a compliant device, even out of scope",
			setup: func(f *fixture) {
				f.world.Scope = &Scope{Include: []DirectoryUser{{UserPrincipalName: "bob@contoso.com"}}}
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
				f.overrides(Override{Device: KeyOf("anna@contoso.com", "appl1"), Access: AccessBlock, By: "root"})
			},
			code:    ReasonAdminOverride,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name: "an expired override no longer counts",
			setup: func(f *fixture) {
				f.overrides(Override{Device: KeyOf("anna@contoso.com", "appl1"), Access: AccessAllow, By: "root", Until: t0.Add(-time.Minute)})
			},
			code:    ReasonUnmanaged,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name: "the newest of two MDM records with the same EAS ID wins",
			setup: func(f *fixture) {
				f.mdm("old", "anna@contoso.com", "appl1", ComplianceNoncompliant)
				f.mdm("new", "anna@contoso.com", "APPL1", ComplianceCompliant)
				m := f.world.MDM["new"]
				m.LastSync = t0
				f.world.MDM["new"] = m
			},
			code:    ReasonCompliant,
			access:  AccessAllow,
			changes: []string{"add allowed anna@contoso.com/appl1"},
		},
		{
			name: "an MDM record an admin linked elsewhere is not merged by EAS ID",
			setup: func(f *fixture) {
				f.mdm("m1", "anna@contoso.com", "appl1", ComplianceCompliant)
				f.links[KeyOf("anna@contoso.com", "other")] = Link{Device: KeyOf("anna@contoso.com", "other"), MDMID: "m1", Kind: LinkManual}
			},
			code:    ReasonUnmanaged,
			access:  AccessBlock,
			changes: []string{"add blocked anna@contoso.com/appl1"},
		},
		{
			name: "two partnerships linked to one MDM record: a conflict",
			setup: func(f *fixture) {
				f.mdm("m1", "anna@contoso.com", "", ComplianceCompliant)
				for _, id := range []string{"appl1", "other"} {
					f.links[KeyOf("anna@contoso.com", id)] = Link{Device: KeyOf("anna@contoso.com", id), MDMID: "m1", Kind: LinkManual}
				}
			},
			code:   ReasonLinkConflict,
			access: AccessNone,
			exempt: true,
		},
		{
			name: "manual link conflict is shown, not resolved",
			setup: func(f *fixture) {
				f.mdm("m9", "anna@contoso.com", "OTHERID", ComplianceCompliant)
				f.links[KeyOf("anna@contoso.com", "appl1")] = Link{Device: KeyOf("anna@contoso.com", "appl1"), MDMID: "m9", Kind: LinkManual}
			},
			code:   ReasonLinkConflict,
			access: AccessNone,
			exempt: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.eas("anna@contoso.com", "appl1", "iPhone15C2", old)
			tt.setup(f)
			out := f.plan()
			rec := out.Records[KeyOf("anna@contoso.com", "appl1")]
			if rec.Decision.Code != tt.code || rec.Decision.Access != tt.access || rec.Decision.Exempt != tt.exempt {
				t.Errorf("decision = %+v, want code %s access %s exempt %v", rec.Decision, tt.code, tt.access, tt.exempt)
			}
			if rec.Decision.Reason == "" {
				t.Error("decision has no reason")
			}
			got := changeStrings(out.Plan.Changes)
			want := slices.Clone(tt.changes)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("changes = %q, want %q", got, want)
			}
			for _, c := range out.Plan.Changes {
				if c.Reason == "" {
					t.Errorf("change %+v has no reason", c)
				}
			}
			if out.Plan.Serial != 7 {
				t.Errorf("plan serial = %d, want the input's 7", out.Plan.Serial)
			}
		})
	}
}

func TestPlannerGracePeriodBoundary(t *testing.T) {
	tests := []struct {
		name   string
		age    time.Duration
		access Access
		code   ReasonCode
	}{
		{"inside the grace period", 23 * time.Hour, AccessNone, ReasonGrace},
		{"exactly at its end", 24 * time.Hour, AccessBlock, ReasonUnmanaged},
		{"after it", 25 * time.Hour, AccessBlock, ReasonUnmanaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.pol.GracePeriod = 24 * time.Hour
			f.eas("anna@contoso.com", "appl1", "iPhone15C2", t0.Add(-tt.age))
			out := f.plan()
			rec := out.Records[KeyOf("anna@contoso.com", "appl1")]
			if rec.Decision.Access != tt.access || rec.Decision.Code != tt.code {
				t.Errorf("decision = %+v, want %s/%s", rec.Decision, tt.access, tt.code)
			}
			if len(out.Plan.Notifications) != 1 {
				t.Errorf("notifications = %d, want the user told either way", len(out.Plan.Notifications))
			}
		})
	}
}

func TestPlannerWithholdsBlocksOnIncompleteData(t *testing.T) {
	for _, side := range []string{"exchange", "intune"} {
		t.Run(side, func(t *testing.T) {
			f := newFixture()
			f.eas("anna@contoso.com", "appl1", "m", t0.Add(-48*time.Hour))
			f.eas("bob@contoso.com", "appl2", "m", t0.Add(-48*time.Hour))
			f.mdm("m2", "bob@contoso.com", "appl2", ComplianceCompliant)
			f.mailbox("carl@contoso.com", []string{"gone"}, nil)
			f.own("carl@contoso.com", ListAllowed, "gone")
			if side == "exchange" {
				f.world.ExchangeComplete = false
			} else {
				f.world.IntuneComplete = false
			}
			out := f.plan()
			for _, c := range out.Plan.Changes {
				if c.Blocks() {
					t.Errorf("blocking change planned from incomplete data: %+v", c)
				}
			}
			if got := changeStrings(out.Plan.Changes); !slices.Contains(got, "add allowed bob@contoso.com/appl2") {
				t.Errorf("allows must still be planned; changes = %q", got)
			}
			if len(out.Plan.Withheld) == 0 {
				t.Error("withheld blocks are not reported")
			}
		})
	}
}

func TestPlannerOrphanEntriesAndStaleOwnership(t *testing.T) {
	f := newFixture()
	f.mailbox("carl@contoso.com", []string{"gone"}, nil)
	f.own("carl@contoso.com", ListAllowed, "gone")
	f.own("carl@contoso.com", ListBlocked, "removed-by-admin")
	out := f.plan()
	if got := changeStrings(out.Plan.Changes); !slices.Equal(got, []string{"remove allowed carl@contoso.com/gone"}) {
		t.Errorf("changes = %q, want easgate's entry for a vanished partnership removed", got)
	}
	if !slices.Contains(out.Disowned, OwnedKeyOf("carl@contoso.com", ListBlocked, "removed-by-admin")) {
		t.Errorf("disowned = %v, want the entry an admin removed forgotten", out.Disowned)
	}
}

func TestPlannerBrake(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		max    int
		prevM  int
		braked bool
	}{
		{"under the limit", 5, 10, 0, false},
		{"at the limit", 10, 10, 0, false},
		{"over the limit", 11, 10, 0, true},
		{"Intune suddenly empty", 1, 100, 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.pol.Safety = Safety{MaxNewBlocks: tt.max}
			for i := range tt.n {
				f.eas("u@contoso.com", "dev"+string(rune('a'+i)), "m", t0.Add(-48*time.Hour))
			}
			f.prevM = tt.prevM
			out := f.plan()
			if (out.Plan.Brake != nil) != tt.braked {
				t.Errorf("brake = %+v, want braked %v", out.Plan.Brake, tt.braked)
			}
		})
	}
}

func TestPlannerNotifications(t *testing.T) {
	f := newFixture()
	f.eas("anna@contoso.com", "new", "m", t0.Add(-48*time.Hour))
	f.eas("anna@contoso.com", "sent", "m", t0.Add(-48*time.Hour))
	f.eas("anna@contoso.com", "due", "m", t0.Add(-48*time.Hour))
	f.eas("anna@contoso.com", "max", "m", t0.Add(-48*time.Hour))
	f.eas("anna@contoso.com", "merged", "m", t0.Add(-48*time.Hour))
	f.mdm("m1", "anna@contoso.com", "merged", ComplianceCompliant)
	f.prev[KeyOf("anna@contoso.com", "sent")] = DeviceRecord{Notify: NotifyState{Count: 1, LastSent: t0.Add(-time.Hour)}}
	f.prev[KeyOf("anna@contoso.com", "due")] = DeviceRecord{Notify: NotifyState{Count: 1, LastSent: t0.Add(-73 * time.Hour)}}
	f.prev[KeyOf("anna@contoso.com", "max")] = DeviceRecord{Notify: NotifyState{Count: 4, LastSent: t0.Add(-300 * time.Hour)}}
	out := f.plan()
	var got []string
	for _, n := range out.Plan.Notifications {
		s := n.DeviceID
		if n.Resend {
			s += " (resend)"
		}
		got = append(got, s)
	}
	if want := []string{"due (resend)", "new"}; !slices.Equal(got, want) {
		t.Errorf("notifications = %q, want %q", got, want)
	}
}

func TestPlannerIsDeterministic(t *testing.T) {
	f := newFixture()
	for i := range 50 {
		f.eas("u"+string(rune('a'+i%7))+"@contoso.com", "d"+string(rune('A'+i)), "m", t0.Add(-48*time.Hour))
	}
	a, b := f.plan(), f.plan()
	if !slices.Equal(changeStrings(a.Plan.Changes), changeStrings(b.Plan.Changes)) {
		t.Fatal("same input, different plans")
	}
	if !slices.IsSortedFunc(a.Plan.Changes, func(x, y Change) int {
		return strings.Compare(string(KeyOf(x.Mailbox, x.DeviceID)), string(KeyOf(y.Mailbox, y.DeviceID)))
	}) {
		t.Error("plan changes are not sorted by device")
	}
}

func TestSuggestedMatch(t *testing.T) {
	f := newFixture()
	f.eas("anna@contoso.com", "androidc1", "Pixel 8", t0.Add(-48*time.Hour))
	d := f.world.EAS[KeyOf("anna@contoso.com", "androidc1")]
	d.DeviceType, d.DeviceOS = "Android", "Android 14"
	f.world.EAS[d.Key()] = d
	f.world.MDM["early"] = &MDMDevice{ID: "early", UserPrincipalName: "anna@contoso.com", OperatingSystem: "Android", Enrolled: t0.Add(-72 * time.Hour), Compliance: ComplianceCompliant}
	f.world.MDM["ios"] = &MDMDevice{ID: "ios", UserPrincipalName: "anna@contoso.com", OperatingSystem: "iOS", Enrolled: t0.Add(-24 * time.Hour), Compliance: ComplianceCompliant}
	f.world.MDM["good"] = &MDMDevice{ID: "good", UserPrincipalName: "anna@contoso.com", OperatingSystem: "Android", Enrolled: t0.Add(-40 * time.Hour), Compliance: ComplianceCompliant}
	f.world.MDM["later"] = &MDMDevice{ID: "later", UserPrincipalName: "anna@contoso.com", OperatingSystem: "Android", Enrolled: t0.Add(-10 * time.Hour), Compliance: ComplianceCompliant}
	out := f.plan()
	rec := out.Records[d.Key()]
	if rec.Suggested != "good" || rec.Merged() {
		t.Errorf("suggested = %q merged = %v, want the nearest enrollment after first sync, not applied", rec.Suggested, rec.Merged())
	}
	f.pol.AutoLinkSuggestions = true
	out = f.plan()
	if rec := out.Records[d.Key()]; rec.MDMID != "good" || len(out.NewLinks) != 1 {
		t.Errorf("auto link: mdm = %q links = %v", rec.MDMID, out.NewLinks)
	}
}

func TestPlannerManagesOrgDefaultWithGrandfathering(t *testing.T) {
	f := newFixture()
	f.pol.ManageOrgDefault = true
	f.pol.UnmanagedAccess = AccessBlock
	f.world.Scope = &Scope{Include: []DirectoryUser{{UserPrincipalName: "anna@contoso.com"}, {UserPrincipalName: "bob@contoso.com"}}}
	f.eas("anna@contoso.com", "managed", "m", t0.Add(-48*time.Hour))
	f.mdm("m1", "anna@contoso.com", "managed", ComplianceCompliant)
	f.eas("bob@contoso.com", "unmanaged", "m", t0.Add(-48*time.Hour))
	f.eas("carl@contoso.com", "outofscope", "m", t0.Add(-48*time.Hour)) // not in an included group
	f.eas("dora@contoso.com", "ruled", "Nokia Lumia 930", t0.Add(-48*time.Hour))
	f.world.Rules = []DeviceAccessRule{{Characteristic: "DeviceModel", QueryString: "Nokia Lumia 930", AccessLevel: "Block"}}
	out := f.plan()
	od := out.Plan.OrgDefault
	if od == nil || od.From != "Allow" || od.To != "Block" {
		t.Fatalf("org default change = %+v, want Allow → Block", od)
	}
	var gf []string
	for _, c := range out.Plan.Changes {
		if c.Grandfather {
			gf = append(gf, c.DeviceID)
		}
	}
	// Carl's device is out of scope: the switch would block it, so it is
	// grandfathered. Dora's is blocked by a rule already; Anna's gets an
	// allow entry as managed; Bob's a block entry.
	if !slices.Equal(gf, []string{"outofscope"}) {
		t.Errorf("grandfathered = %q, want only the out-of-scope device", gf)
	}
	if r := out.Records[KeyOf("carl@contoso.com", "outofscope")]; r.AccessState != StateAllowed {
		t.Errorf("out-of-scope device predicted %s after the switch", r.AccessState)
	}

	// Once switched, the grandfathered entry is kept while easgate leaves
	// the device alone, and no new switch is planned.
	f.world.Org.DefaultAccessLevel = "Block"
	f.mailbox("carl@contoso.com", []string{"outofscope"}, nil)
	f.owned[OwnedKeyOf("carl@contoso.com", ListAllowed, "outofscope")] = OwnedEntry{Mailbox: "carl@contoso.com", DeviceID: "outofscope", List: ListAllowed, Grandfathered: true}
	out = f.plan()
	if out.Plan.OrgDefault != nil {
		t.Errorf("switch planned again: %+v", out.Plan.OrgDefault)
	}
	for _, c := range out.Plan.Changes {
		if c.DeviceID == "outofscope" {
			t.Errorf("grandfathered entry touched: %+v", c)
		}
	}

	// An incomplete inventory defers the switch.
	f.world.Org.DefaultAccessLevel = "Allow"
	f.world.IntuneComplete = false
	out = f.plan()
	if out.Plan.OrgDefault != nil || len(out.Plan.Notes) == 0 {
		t.Errorf("switch on incomplete data: %+v notes %q", out.Plan.OrgDefault, out.Plan.Notes)
	}
}

func TestPlannerRemovesIdlePartnershipsWithinExchangesLimit(t *testing.T) {
	f := newFixture()
	f.pol.RemoveIdleAfter = 90 * 24 * time.Hour
	for i := range 25 {
		id := "idle" + string(rune('a'+i))
		f.eas("anna@contoso.com", id, "m", t0.Add(-400*24*time.Hour))
		d := f.world.EAS[KeyOf("anna@contoso.com", id)]
		d.LastSync = t0.Add(-100 * 24 * time.Hour)
		f.world.EAS[d.Key()] = d
	}
	f.eas("bob@contoso.com", "fresh", "m", t0.Add(-400*24*time.Hour))
	fresh := f.world.EAS[KeyOf("bob@contoso.com", "fresh")]
	fresh.LastSync = t0.Add(-time.Hour)
	f.world.EAS[fresh.Key()] = fresh
	f.eas("bob@contoso.com", "bobidle", "m", t0.Add(-400*24*time.Hour))
	bobIdle := f.world.EAS[KeyOf("bob@contoso.com", "bobidle")]
	bobIdle.LastSync = t0.Add(-200 * 24 * time.Hour)
	f.world.EAS[bobIdle.Key()] = bobIdle
	f.eas("bob@contoso.com", "nostats", "m", t0.Add(-400*24*time.Hour)) // no last sync known: kept
	in := PlanInput{Now: t0, Kind: RunFull, Policy: f.pol, World: f.world, Links: f.links, Owned: f.owned, Prev: f.prev,
		RecentRemovals: map[string]int{"anna@contoso.com": 5}}
	out := BuildPlan(in)
	perMailbox := map[string]int{}
	for _, r := range out.Plan.Removals {
		perMailbox[r.Mailbox]++
		if r.DeviceID == "fresh" || r.DeviceID == "nostats" {
			t.Errorf("%s is planned for removal", r.DeviceID)
		}
	}
	if perMailbox["anna@contoso.com"] != 15 || perMailbox["bob@contoso.com"] != 1 {
		t.Errorf("removals per mailbox = %v, want anna 15 (20 a month, 5 used) and bob 1", perMailbox)
	}
	if len(out.Plan.Notes) != 1 || !strings.Contains(out.Plan.Notes[0], "10 idle partnership(s) wait") {
		t.Errorf("notes = %q", out.Plan.Notes)
	}
}

func TestPlannerNotEASClientsAreLeftAlone(t *testing.T) {
	f := newFixture()
	f.eas("anna@contoso.com", "outlookapp", "Outlook for iOS and Android", t0.Add(-48*time.Hour))
	d := f.world.EAS[KeyOf("anna@contoso.com", "outlookapp")]
	d.ClientType = "Outlook"
	f.world.EAS[d.Key()] = d
	out := f.plan()
	r := out.Records[d.Key()]
	if r.Decision.Code != ReasonNotEAS || !r.Decision.Exempt || len(out.Plan.Changes) != 0 || len(out.Plan.Notifications) != 0 {
		t.Errorf("Outlook app: decision %+v, %d changes, %d mails", r.Decision, len(out.Plan.Changes), len(out.Plan.Notifications))
	}
	if out.Plan.Counts.EASDevices != 0 {
		t.Errorf("Outlook app counted as an EAS device")
	}
}

func TestPlannerCountsNewBlocksPerDevice(t *testing.T) {
	f := newFixture()
	f.eas("anna@contoso.com", "appl1", "m", t0.Add(-48*time.Hour))
	f.mailbox("anna@contoso.com", []string{"appl1"}, nil)
	f.own("anna@contoso.com", ListAllowed, "appl1")
	out := f.plan()
	if len(out.Plan.Changes) != 2 || out.Plan.NewBlocks() != 1 {
		t.Errorf("%d changes, %d new blocks; want an add and a remove counted as one device", len(out.Plan.Changes), out.Plan.NewBlocks())
	}
}

func TestPlannerRestrictedToNamedDevices(t *testing.T) {
	f := newFixture()
	f.pol.Safety = Safety{MaxNewBlocks: 0}
	f.eas("anna@contoso.com", "appl1", "m", t0.Add(-48*time.Hour))
	f.eas("bob@contoso.com", "appl2", "m", t0.Add(-48*time.Hour))
	f.mailbox("carl@contoso.com", []string{"gone"}, nil)
	f.own("carl@contoso.com", ListAllowed, "gone")
	out := BuildPlan(PlanInput{Now: t0, Kind: RunQuick, Policy: f.pol, World: f.world, Links: f.links, Owned: f.owned,
		Prev: f.prev, Devices: []DeviceKey{KeyOf("anna@contoso.com", "appl1")}})
	if got := changeStrings(out.Plan.Changes); !slices.Equal(got, []string{"add blocked anna@contoso.com/appl1"}) {
		t.Errorf("changes = %q, want only Anna's device and no orphan clean-up", got)
	}
	if out.Plan.Brake != nil {
		t.Errorf("an admin's action on one device was braked: %+v", out.Plan.Brake)
	}
	if len(out.Records) != 1 {
		t.Errorf("records = %d, want only the named device", len(out.Records))
	}
}
