package tui

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// fixedNow is the console's clock in tests.
var fixedNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

// at is a time relative to fixedNow.
func at(d time.Duration) time.Time { return fixedNow.Add(d) }

// fakeAPI is an in-memory engine.API holding a small organisation: the
// console's edge, faked for its unit tests only. It keeps state like the
// engine does (a link merges, an override decides, a resend counts), emits
// the events a run emits, and records every admin action so a test can
// assert what the console asked for.
type fakeAPI struct {
	held     *engine.Plan // the plan the brake holds, whole
	mu       sync.Mutex
	status   engine.Status
	devices  []engine.DeviceRecord
	mdm      []engine.MDMDevice
	runs     []engine.Run // newest first
	journal  []engine.JournalEntry
	logs     []engine.LogEntry
	subs     map[chan engine.Event]struct{}
	requests []engine.SyncRequest
	calls    map[string]int
	actions  []string // what the admin did, in words, in order
	stats    *engine.DeviceStatistics
	mail     engine.MailPreview

	// gate, when set, holds Sync after its first progress event until the
	// test closes it.
	gate chan struct{}
	// brake, when set, makes the next Sync hold its plan.
	brake bool
	// errs fails the named method.
	errs map[string]error
}

// newFake returns a fake holding the fixture organisation.
func newFake() *fakeAPI {
	f := &fakeAPI{
		devices: fixtureDevices(),
		mdm:     fixtureMDM(),
		runs:    fixtureRuns(),
		journal: fixtureJournal(),
		logs:    fixtureLogs(),
		subs:    map[chan engine.Event]struct{}{},
		calls:   map[string]int{},
		errs:    map[string]error{},
		mail: engine.MailPreview{To: "ben.novak@contoso.com", Subject: "Enroll your phone to keep getting mail",
			Text: "Hello Ben,\r\n\r\nyour Pixel 8 is not enrolled in Intune.\r\nEnroll it: https://portal.manage.microsoft.com/\r\n"},
		stats: &engine.DeviceStatistics{LastSuccessSync: at(-5 * time.Minute), Status: "DeviceOk", WipeStatus: "",
			Fields: map[string]string{"DevicePolicyApplied": "Default", "NumberOfFoldersSynced": "12"}},
	}
	f.status = engine.Status{
		Counts:  countsOf(f.devices),
		LastRun: &f.runs[0],
		Exchange: []engine.Health{
			{Name: "ex01.contoso.local", OK: true, InUse: true, LastCall: at(-time.Minute)},
			{Name: "ex02.contoso.local", Error: "connection refused", LastCall: at(-time.Hour),
				CoolDownUntil: at(10 * time.Minute)},
		},
		Intune:    engine.Health{Name: "graph.microsoft.com", OK: true, LastCall: at(-time.Minute)},
		Policy:    "unmanaged: block · noncompliant: block · all mailboxes",
		NextFull:  at(20 * time.Hour),
		NextQuick: at(10 * time.Minute),
		Pending:   2,
		Warnings: []string{"unmanaged_access is quarantine but Exchange's DefaultAccessLevel is Allow: " +
			"unmanaged devices are not quarantined"},
	}
	f.status.Counts.MDMDevices = len(f.mdm)
	return f
}

// dev builds a fixture device record.
func dev(mailbox, id, typ, model, os string, state engine.AccessState, first, last time.Duration) engine.DeviceRecord {
	return engine.DeviceRecord{EASDevice: engine.EASDevice{
		Mailbox: mailbox, PrimarySMTP: mailbox, DeviceID: id, DeviceType: typ, DeviceModel: model,
		DeviceOS: os, ClientType: "EAS", AccessState: state, FirstSync: at(first), LastSync: at(last),
		Identity: mailbox + "\\ExchangeActiveSyncDevices\\" + typ + "§" + id,
	}, InScope: true}
}

// fixtureDevices is a small organisation covering every state the views
// show, including a device whose fields carry escape sequences.
func fixtureDevices() []engine.DeviceRecord {
	day := 24 * time.Hour
	anna := dev("anna.schmidt@contoso.com", "ApplF17XK2QWE", "iPhone", "iPhone15C2", "iOS 17.5.1 21F90",
		engine.StateAllowed, -90*day, -5*time.Minute)
	anna.MDMID, anna.Link, anna.Compliance = "a1b2c3d4-0001", engine.LinkEASID, engine.ComplianceCompliant
	anna.AccessReason = "Individual"
	anna.Decision = engine.Decision{Access: engine.AccessAllow, Code: engine.ReasonCompliant,
		Reason: "enrolled in Intune and compliant (MDM record a1b2c3d4-0001, same EAS device ID)"}

	ben := dev("ben.novak@contoso.com", "androidc1234567", "Android", "Pixel 8", "Android 14",
		engine.StateQuarantined, -10*day, -2*time.Hour)
	ben.AccessReason = "Global"
	ben.Decision = engine.Decision{Access: engine.AccessQuarantine, Code: engine.ReasonUnmanaged,
		Reason: "not enrolled in Intune (no MDM record with EAS ID androidc1234567)"}
	ben.Since = at(-9 * day)
	ben.Suggested = "mdm-ben-pixel"
	ben.Notify = engine.NotifyState{FirstSent: at(-9 * day), LastSent: at(-3 * day), Count: 2}

	chloe := dev("chloe.dubois@contoso.com", "SEC1A2B3C4D5E6", "SAMSUNGSMS911B", "SM-S911B", "Android 14",
		engine.StateBlocked, -6*day, -30*time.Minute)
	chloe.AccessReason = "Individual"
	chloe.Decision = engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged,
		Reason: "not enrolled in Intune (no MDM record with EAS ID SEC1A2B3C4D5E6)"}
	chloe.Since = at(-3 * day)
	chloe.Notify = engine.NotifyState{FirstSent: at(-6 * day), LastSent: at(-3 * day), Count: 3}

	david := dev("david.rossi@contoso.com", "EVIL0001", "iPhone", "Evil\x1b[2J\x1b[31mModel\x07", "iOS\n17\r\x9b1m",
		engine.StateAllowed, -2*day, -10*time.Minute)
	david.AccessReason = "Global"
	david.Decision = engine.Decision{Access: engine.AccessNone, Code: engine.ReasonGrace,
		Reason: "would block, but the partnership is new: block deferred until 2026-03-05"}

	emma := dev("emma.jensen@contoso.com", "W1NPH0NE", "WP8", "Nokia Lumia 930", "Windows Phone 8.1",
		engine.StateBlocked, -400*day, -20*day)
	emma.AccessReason = "DeviceRule"
	emma.MDMID, emma.Link, emma.Compliance = "a1b2c3d4-0005", engine.LinkManual, engine.ComplianceCompliant
	emma.Decision = engine.Decision{Access: engine.AccessAllow, Code: engine.ReasonCompliant,
		Reason: "enrolled in Intune and compliant (MDM record a1b2c3d4-0005, linked by hand)"}

	felix := dev("felix.kowalski@contoso.com", "ApplIPAD77", "iPad", "iPad13C16", "iOS 18.1 22B83",
		engine.StateBlocked, -30*day, -1*day)
	felix.AccessReason = "Individual"
	felix.MDMID, felix.Link, felix.Compliance = "a1b2c3d4-0006", engine.LinkEASID, engine.ComplianceNoncompliant
	felix.Decision = engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonAdminOverride,
		Reason: "blocked by hand by alice, until 2026-03-09T00:00:00Z: lost on a train"}
	felix.Since = at(-12 * day)

	grace := dev("grace.garcia@contoso.com", "OUTLOOKAPP01", "Outlook", "Outlook for iOS", "iOS 18.3.2",
		engine.StateAllowed, -50*day, -1*time.Hour)
	grace.ClientType = "Outlook"
	grace.Decision = engine.Decision{Access: engine.AccessNone, Exempt: true, Code: engine.ReasonNotEAS,
		Reason: "an Outlook REST client: EAS lists do not govern it"}

	hugo := dev("hugo.smith@contoso.com", "androidd999", "Android", "Pixel 7a", "Android 13",
		engine.StateDeviceDiscovery, -1*day, -3*time.Hour)
	hugo.Decision = engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged,
		Reason: "not enrolled in Intune (no MDM record with EAS ID androidd999)"}
	hugo.Notify = engine.NotifyState{LastTried: at(-time.Hour), LastError: "smtp: 550 mailbox unavailable"}

	return []engine.DeviceRecord{anna, ben, chloe, david, emma, felix, grace, hugo}
}

// fixtureMDM is the organisation's Intune records.
func fixtureMDM() []engine.MDMDevice {
	day := 24 * time.Hour
	return []engine.MDMDevice{
		{ID: "a1b2c3d4-0001", UserPrincipalName: "anna.schmidt@contoso.com", Email: "anna.schmidt@contoso.com",
			DeviceName: "Anna's iPhone", OperatingSystem: "iOS", OSVersion: "17.5.1", Model: "iPhone 15",
			Manufacturer: "Apple", EASDeviceID: "ApplF17XK2QWE", EASActivated: true, Compliance: engine.ComplianceCompliant,
			ManagementAgent: "mdm", ExchangeAccessState: "allowed", Enrolled: at(-80 * day), LastSync: at(-time.Hour)},
		{ID: "mdm-ben-pixel", UserPrincipalName: "ben.novak@contoso.com", Email: "ben.novak@contoso.com",
			DeviceName: "Pixel 8", OperatingSystem: "Android", OSVersion: "14", Model: "Pixel 8", Manufacturer: "Google",
			Compliance: engine.ComplianceCompliant, ManagementAgent: "mdm", Enrolled: at(-8 * day), LastSync: at(-time.Hour)},
		{ID: "mdm-ben-ipad", UserPrincipalName: "ben.novak@contoso.com", Email: "ben.novak@contoso.com",
			DeviceName: "Ben's iPad", OperatingSystem: "iPadOS", OSVersion: "18.1", Model: "iPad Air", Manufacturer: "Apple",
			Compliance: engine.ComplianceNoncompliant, ManagementAgent: "mdm", Enrolled: at(-100 * day), LastSync: at(-day)},
		{ID: "a1b2c3d4-0005", UserPrincipalName: "emma.jensen@contoso.com", DeviceName: "Lumia", OperatingSystem: "Windows",
			Compliance: engine.ComplianceCompliant, ManagementAgent: "eas", Enrolled: at(-300 * day)},
		{ID: "a1b2c3d4-0006", UserPrincipalName: "felix.kowalski@contoso.com", DeviceName: "Felix iPad", OperatingSystem: "iPadOS",
			EASDeviceID: "ApplIPAD77", Compliance: engine.ComplianceNoncompliant, ManagementAgent: "mdm", Enrolled: at(-25 * day)},
	}
}

// fixtureRuns is the run history, newest first.
func fixtureRuns() []engine.Run {
	start := at(-4 * time.Hour)
	return []engine.Run{
		{ID: "run-3", Kind: engine.RunFull, Trigger: engine.TriggerSchedule, Actor: "easgate", Status: engine.StatusSucceeded,
			Started: start, Finished: start.Add(12 * time.Second), Server: "ex01.contoso.local",
			Counts: engine.Counts{EASDevices: 8, MDMDevices: 5, Merged: 3, Unmerged: 4, Allowed: 3, Blocked: 3, Quarantined: 1,
				ChangesPlanned: 4, ChangesApplied: 4, NotificationsSent: 2},
			Phases: []engine.PhaseTiming{
				{Name: engine.PhaseObserveExchange, Started: start, Duration: 5 * time.Second},
				{Name: engine.PhaseObserveIntune, Started: start, Duration: 3 * time.Second},
				{Name: engine.PhasePlan, Started: start.Add(5 * time.Second), Duration: 200 * time.Millisecond},
				{Name: engine.PhaseApply, Started: start.Add(6 * time.Second), Duration: 4 * time.Second},
				{Name: engine.PhaseNotify, Started: start.Add(10 * time.Second), Duration: time.Second,
					Error: "smtp: 550 mailbox unavailable"},
				{Name: engine.PhaseSave, Started: start.Add(11 * time.Second), Duration: 300 * time.Millisecond},
			},
			Problems:     []string{"notification to hugo.smith@contoso.com failed: smtp: 550 mailbox unavailable"},
			JournalFirst: 1, JournalLast: 5},
		{ID: "run-2", Kind: engine.RunQuick, Trigger: engine.TriggerSchedule, Status: engine.StatusFailed,
			Started: at(-14 * time.Hour), Finished: at(-14*time.Hour + 3*time.Minute + 5*time.Second),
			Error: "list mobile devices on ex02.contoso.local: connection refused"},
		{ID: "run-1", Kind: engine.RunFull, Trigger: engine.TriggerStartup, Status: engine.StatusBraked,
			Started: at(-28 * time.Hour), Finished: at(-28*time.Hour + 850*time.Millisecond),
			Counts:   engine.Counts{EASDevices: 8, ChangesPlanned: 120},
			Problems: []string{"plan would block 120 devices (limit 50)", "intune returned 0 devices"}},
	}
}

// fixtureJournal is the journal, oldest first.
func fixtureJournal() []engine.JournalEntry {
	t := at(-4 * time.Hour)
	block := engine.Change{Mailbox: "chloe.dubois@contoso.com", DeviceID: "SEC1A2B3C4D5E6", List: engine.ListBlocked,
		Op: engine.OpAdd, Reason: "not enrolled in Intune"}
	return []engine.JournalEntry{
		{Seq: 1, Time: t, RunID: "run-3", Kind: engine.JournalChange, Stage: engine.StageBegin,
			Device: "chloe.dubois@contoso.com/sec1a2b3c4d5e6", Change: &block, Actor: "easgate", Message: "not enrolled in Intune"},
		{Seq: 2, Time: t.Add(time.Second), RunID: "run-3", Kind: engine.JournalChange, Stage: engine.StageEnd, OK: true,
			Device: "chloe.dubois@contoso.com/sec1a2b3c4d5e6", Change: &block, Actor: "easgate", Message: "add SEC1A2B3C4D5E6 blocked list: ok"},
		{Seq: 3, Time: t.Add(2 * time.Second), RunID: "run-3", Kind: engine.JournalNotify, OK: true,
			Device: "ben.novak@contoso.com/androidc1234567", Actor: "easgate", Message: "enrollment notification sent to ben.novak@contoso.com"},
		{Seq: 4, Time: t.Add(3 * time.Second), RunID: "run-3", Kind: engine.JournalNotify,
			Device: "hugo.smith@contoso.com/androidd999", Actor: "easgate", Error: "smtp: 550 mailbox unavailable",
			Message: "enrollment notification to hugo.smith@contoso.com failed"},
		{Seq: 5, Time: at(-2 * time.Hour), Kind: engine.JournalAdmin, OK: true,
			Device: "felix.kowalski@contoso.com/appliPad77", Actor: "alice", Message: "blocked by hand until 2026-03-09T00:00:00Z: lost on a train"},
	}
}

// fixtureLogs is the engine's recent log lines, oldest first.
func fixtureLogs() []engine.LogEntry {
	return []engine.LogEntry{
		{Time: at(-4 * time.Hour), Level: "INFO", Message: "sync started", Attrs: "run=run-3 kind=full"},
		{Time: at(-time.Hour), Level: "WARN", Message: "exchange server failed", Attrs: "server=ex02.contoso.local err=\"connection refused\""},
		{Time: at(-time.Minute), Level: "ERROR", Message: "notification failed", Attrs: "to=hugo.smith@contoso.com"},
	}
}

// countsOf counts records as the engine's overview does.
func countsOf(recs []engine.DeviceRecord) engine.Counts {
	var c engine.Counts
	for i := range recs {
		r := &recs[i]
		c.EASDevices++
		if r.Merged() {
			c.Merged++
		} else if r.IsEAS() {
			c.Unmerged++
		}
		switch r.AccessState {
		case engine.StateAllowed:
			c.Allowed++
		case engine.StateBlocked:
			c.Blocked++
		case engine.StateQuarantined:
			c.Quarantined++
		}
		if r.Decision.Exempt {
			c.Exempt++
		}
	}
	return c
}

// heldPlan is a plan the brake holds: three blocks, an unblock, a mail.
func heldPlan() *engine.Plan {
	return &engine.Plan{ID: "plan-7", Serial: 42, Kind: engine.RunFull, Computed: at(-time.Minute),
		Changes: []engine.Change{
			{Mailbox: "ben.novak@contoso.com", DeviceID: "androidc1234567", List: engine.ListBlocked, Op: engine.OpAdd,
				Reason: "not enrolled in Intune (no MDM record with EAS ID androidc1234567)"},
			{Mailbox: "hugo.smith@contoso.com", DeviceID: "androidd999", List: engine.ListBlocked, Op: engine.OpAdd,
				Reason: "not enrolled in Intune (no MDM record with EAS ID androidd999)"},
			{Mailbox: "anna.schmidt@contoso.com", DeviceID: "ApplF17XK2QWE", List: engine.ListAllowed, Op: engine.OpRemove,
				Reason: "enrolled but not compliant"},
			{Mailbox: "emma.jensen@contoso.com", DeviceID: "W1NPH0NE", List: engine.ListAllowed, Op: engine.OpAdd,
				Reason: "enrolled in Intune and compliant (linked by hand)"},
		},
		Notifications: []engine.Notification{{Device: "hugo.smith@contoso.com/androidd999", To: "hugo.smith@contoso.com",
			DeviceID: "androidd999", Access: engine.AccessBlock, Reason: "not enrolled in Intune"}},
		Brake: &engine.Brake{NewBlocks: 3, Limit: 2, Reason: "3 new blocks exceed the limit of 2"},
	}
}

func (f *fakeAPI) count(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
	return f.errs[name]
}

// callCount returns how often a method was called.
func (f *fakeAPI) callCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// did returns the admin actions so far.
func (f *fakeAPI) did() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.actions)
}

// record notes an admin action and tells subscribers the state changed.
func (f *fakeAPI) record(format string, args ...any) {
	f.mu.Lock()
	f.actions = append(f.actions, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	f.emit(engine.Event{Kind: engine.EventState})
}

// syncRequests returns the Sync requests so far.
func (f *fakeAPI) syncRequests() []engine.SyncRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// setHeld makes the brake hold p (nil: none).
func (f *fakeAPI) setHeld(p *engine.Plan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = p
	f.status.HeldPlan = nil
	if p != nil {
		f.status.HeldPlan = p.Summary()
	}
}

func (f *fakeAPI) Status(context.Context) (engine.Status, error) {
	if err := f.count("Status"); err != nil {
		return engine.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

func (f *fakeAPI) Devices(_ context.Context, q engine.DeviceQuery) ([]engine.DeviceRecord, error) {
	if err := f.count("Devices"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if q.Filter == engine.FilterAll || q.Filter == "" {
		return slices.Clone(f.devices), nil
	}
	var out []engine.DeviceRecord
	for i := range f.devices {
		if q.Filter.Match(&f.devices[i]) {
			out = append(out, f.devices[i])
		}
	}
	return out, nil
}

// find returns the index of a device, or -1.
func (f *fakeAPI) find(k engine.DeviceKey) int {
	return slices.IndexFunc(f.devices, func(r engine.DeviceRecord) bool { return r.Key() == k })
}

func (f *fakeAPI) Device(_ context.Context, k engine.DeviceKey) (*engine.DeviceDetail, error) {
	if err := f.count("Device"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(k)
	if i < 0 {
		return nil, fmt.Errorf("device %s: %w", k, engine.ErrNotFound)
	}
	d := &engine.DeviceDetail{Record: f.devices[i]}
	for j := range f.mdm {
		if f.mdm[j].ID == d.Record.MDMID {
			d.MDM = &f.mdm[j]
		}
	}
	if d.Record.AccessReason == "Individual" && d.Record.Decision.Code != engine.ReasonAdminOverride {
		list := engine.ListAllowed
		if d.Record.AccessState == engine.StateBlocked {
			list = engine.ListBlocked
		}
		d.Owned = []engine.OwnedEntry{{Mailbox: d.Record.Mailbox, DeviceID: d.Record.DeviceID, List: list,
			Added: at(-4 * time.Hour), RunID: "run-3"}}
	}
	for _, j := range f.journal {
		if j.Device == k {
			d.Journal = append(d.Journal, j)
		}
	}
	return d, nil
}

func (f *fakeAPI) Runs(_ context.Context, limit int) ([]engine.Run, error) {
	if err := f.count("Runs"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.runs[:min(limit, len(f.runs))]), nil
}

func (f *fakeAPI) Journal(_ context.Context, q engine.JournalQuery) ([]engine.JournalEntry, error) {
	if err := f.count("Journal"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	js := slices.Clone(f.journal)
	if q.Limit > 0 && len(js) > q.Limit {
		js = js[len(js)-q.Limit:]
	}
	return js, nil
}

func (f *fakeAPI) RunDetail(_ context.Context, id string) (*engine.RunDetail, error) {
	if err := f.count("RunDetail"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.runs, func(r engine.Run) bool { return r.ID == id })
	if i < 0 {
		if p := f.held; p != nil && p.ID == id {
			// The run that computed the held plan, as the engine keeps it.
			return &engine.RunDetail{Run: engine.Run{ID: id, Kind: p.Kind, Status: engine.StatusBraked, PlanID: id}, Plan: p}, nil
		}
		return nil, fmt.Errorf("run %s: %w", id, engine.ErrNotFound)
	}
	d := &engine.RunDetail{Run: f.runs[i]}
	for _, j := range f.journal {
		if j.RunID == id {
			d.Journal = append(d.Journal, j)
		}
	}
	if p := f.held; p != nil && p.ID == d.Run.PlanID {
		d.Plan = p
	}
	return d, nil
}

func (f *fakeAPI) Candidates(_ context.Context, k engine.DeviceKey) ([]engine.Candidate, error) {
	if err := f.count("Candidates"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(k)
	if i < 0 {
		return nil, fmt.Errorf("device %s: %w", k, engine.ErrNotFound)
	}
	r := f.devices[i]
	var out []engine.Candidate
	for _, m := range f.mdm {
		if m.UserPrincipalName == r.Mailbox {
			c := engine.Candidate{MDM: m, Suggested: m.ID == r.Suggested, Why: "reports no EAS ID, same platform"}
			if c.Suggested {
				out = slices.Insert(out, 0, c)
			} else {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func (f *fakeAPI) Logs(_ context.Context, limit int) ([]engine.LogEntry, error) {
	if err := f.count("Logs"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logs), nil
}

func (f *fakeAPI) Statistics(_ context.Context, k engine.DeviceKey) (*engine.DeviceStatistics, error) {
	if err := f.count("Statistics"); err != nil {
		return nil, err
	}
	return f.stats, nil
}

func (f *fakeAPI) Link(_ context.Context, req engine.LinkRequest) error {
	if err := f.count("Link"); err != nil {
		return err
	}
	f.mu.Lock()
	if i := f.find(req.Device); i >= 0 {
		f.devices[i].MDMID, f.devices[i].Link, f.devices[i].Suggested = req.MDMID, engine.LinkManual, ""
		f.devices[i].Compliance = engine.ComplianceCompliant
	}
	f.mu.Unlock()
	f.record("link %s %s by %s", req.Device, req.MDMID, req.Actor)
	return nil
}

func (f *fakeAPI) Unlink(_ context.Context, req engine.DeviceRequest) error {
	if err := f.count("Unlink"); err != nil {
		return err
	}
	f.mu.Lock()
	if i := f.find(req.Device); i >= 0 {
		f.devices[i].MDMID, f.devices[i].Link = "", ""
	}
	f.mu.Unlock()
	f.record("unlink %s by %s", req.Device, req.Actor)
	return nil
}

func (f *fakeAPI) Resend(_ context.Context, req engine.ResendRequest) ([]engine.NotifyResult, error) {
	if err := f.count("Resend"); err != nil {
		return nil, err
	}
	out := make([]engine.NotifyResult, len(req.Devices))
	f.mu.Lock()
	for i, k := range req.Devices {
		mb, _ := k.Split()
		out[i] = engine.NotifyResult{Device: k, To: mb, OK: true}
		if j := f.find(k); j >= 0 {
			f.devices[j].Notify.Count++
			f.devices[j].Notify.LastSent = fixedNow
		}
	}
	f.mu.Unlock()
	f.record("resend %v by %s", req.Devices, req.Actor)
	return out, nil
}

func (f *fakeAPI) Preview(_ context.Context, k engine.DeviceKey) (*engine.MailPreview, error) {
	if err := f.count("Preview"); err != nil {
		return nil, err
	}
	p := f.mail
	mb, _ := k.Split()
	p.To = mb
	return &p, nil
}

func (f *fakeAPI) Override(_ context.Context, req engine.OverrideRequest) error {
	if err := f.count("Override"); err != nil {
		return err
	}
	until := "cleared"
	if !req.Until.IsZero() {
		until = req.Until.UTC().Format(time.RFC3339)
	}
	f.record("override %s %s until %s note %q by %s", req.Device, req.Access, until, req.Note, req.Actor)
	return nil
}

func (f *fakeAPI) RemovePartnership(_ context.Context, req engine.DeviceRequest) error {
	if err := f.count("RemovePartnership"); err != nil {
		return err
	}
	f.mu.Lock()
	if i := f.find(req.Device); i >= 0 {
		f.devices = slices.Delete(f.devices, i, i+1)
	}
	f.mu.Unlock()
	f.record("remove %s by %s", req.Device, req.Actor)
	return nil
}

func (f *fakeAPI) Wipe(_ context.Context, req engine.WipeRequest) error {
	if err := f.count("Wipe"); err != nil {
		return err
	}
	f.record("wipe %s account-only=%v by %s", req.Device, req.AccountOnly, req.Actor)
	return nil
}

func (f *fakeAPI) Approve(ctx context.Context, req engine.PlanRequest) (*engine.RunReport, error) {
	if err := f.count("Approve"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	held := f.status.HeldPlan
	f.mu.Unlock()
	if held == nil {
		return nil, engine.ErrNoHeldPlan
	}
	if held.ID != req.PlanID {
		return nil, fmt.Errorf("plan %s is not the held plan %s: %w", req.PlanID, held.ID, engine.ErrStalePlan)
	}
	f.record("approve %s by %s", req.PlanID, req.Actor)
	f.setHeld(nil)
	return f.Sync(ctx, engine.SyncRequest{Kind: held.Kind, Trigger: engine.TriggerManual, Actor: req.Actor, PlanID: held.ID})
}

func (f *fakeAPI) Discard(_ context.Context, req engine.PlanRequest) error {
	if err := f.count("Discard"); err != nil {
		return err
	}
	f.setHeld(nil)
	f.record("discard %s by %s", req.PlanID, req.Actor)
	return nil
}

func (f *fakeAPI) Cancel(_ context.Context, actor string) error {
	if err := f.count("Cancel"); err != nil {
		return err
	}
	f.record("cancel by %s", actor)
	return nil
}

func (f *fakeAPI) Sync(ctx context.Context, req engine.SyncRequest) (*engine.RunReport, error) {
	if err := f.count("Sync"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	n := len(f.runs) + 1
	gate, brake := f.gate, f.brake
	f.brake = false
	f.mu.Unlock()

	run := engine.Run{ID: fmt.Sprintf("run-%d", n), Kind: req.Kind, Trigger: req.Trigger, Actor: req.Actor,
		Status: engine.StatusRunning, Started: at(-30 * time.Second), PlanID: req.PlanID}
	started := run // events carry copies, as the engine's do
	f.emit(engine.Event{Kind: engine.EventRunStarted, Run: &started, Time: at(-30 * time.Second)})
	f.emit(engine.Event{Kind: engine.EventPhase, Progress: &engine.Progress{Run: run, Phase: engine.PhaseObserveExchange},
		Time: at(-30 * time.Second)})
	f.emit(engine.Event{Kind: engine.EventProgress, Progress: &engine.Progress{Run: run, Phase: engine.PhaseApply, Done: 1, Total: 2},
		Time: at(-10 * time.Second)})
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	run.Finished = fixedNow
	run.Status = engine.StatusSucceeded
	run.Counts = engine.Counts{EASDevices: 8, ChangesPlanned: 2, ChangesApplied: 2, NotificationsSent: 1}
	rep := &engine.RunReport{}
	switch {
	case req.DryRun:
		run.Status = engine.StatusDryRun
		p := heldPlan()
		p.ID, p.Brake = "plan-dry", nil
		rep.Plan = p
		run.Counts.ChangesApplied, run.Counts.NotificationsSent = 0, 0
	case brake:
		run.Status = engine.StatusBraked
		p := heldPlan()
		run.PlanID = p.ID
		rep.Plan = p
		run.Counts.ChangesApplied = 1
		f.setHeld(p)
	}
	rep.Run = run
	f.mu.Lock()
	f.runs = append([]engine.Run{run}, f.runs...)
	f.status.LastRun = &f.runs[0]
	f.mu.Unlock()
	finished := run
	f.emit(engine.Event{Kind: engine.EventRunFinished, Run: &finished})
	return rep, nil
}

func (f *fakeAPI) Subscribe(ctx context.Context) (<-chan engine.Event, error) {
	if err := f.count("Subscribe"); err != nil {
		return nil, err
	}
	ch := make(chan engine.Event, 64)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, ch)
		close(ch)
		f.mu.Unlock()
	}()
	return ch, nil
}

// emit sends an event to every subscriber with room for it, as the engine does.
func (f *fakeAPI) emit(ev engine.Event) {
	if ev.Time.IsZero() {
		ev.Time = fixedNow
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

var _ engine.API = (*fakeAPI)(nil)

// harness drives a Model as a tea.Program would, synchronously: commands
// run in goroutines and their messages come back through one channel, so a
// command that waits (for an event, a tick) just stays pending.
type harness struct {
	t       testing.TB
	m       *Model
	msgs    chan tea.Msg
	done    chan struct{}
	pending atomic.Int32 // commands under way that answer soon
}

// longLived reports whether cmd waits (for an event, a tick, a run) rather
// than answers soon: settle does not wait for those. It goes by the name of
// the function the command's code belongs to, which survives inlining.
func longLived(cmd tea.Cmd) bool {
	name := runtime.FuncForPC(reflect.ValueOf(cmd).Pointer()).Name()
	for _, s := range []string{"waitForEvents", "Tick", "runSync"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// newHarness returns a model of api at width×height, not yet started.
func newHarness(t testing.TB, api engine.API, opts Options, width, height int) *harness {
	t.Helper()
	if opts.Now == nil {
		opts.Now = clock
	}
	if opts.Title == "" {
		opts.Title = "easgate demo"
	}
	if opts.exportDir == "" {
		opts.exportDir = t.TempDir()
	}
	m := New(api, opts)
	m.statusEvery = 0
	m.actor = "tester"
	h := &harness{t: t, m: m, msgs: make(chan tea.Msg, 1024), done: make(chan struct{})}
	t.Cleanup(func() {
		m.cancel()
		close(h.done)
	})
	h.send(tea.WindowSizeMsg{Width: width, Height: height})
	return h
}

// start runs Init and waits until every view and the overview have loaded
// and the event stream is open.
func (h *harness) start() *harness {
	h.t.Helper()
	h.run(h.m.Init())
	h.until("loaded", func(m *Model) bool {
		for _, v := range m.tabs {
			if _, ok := v.Count(); !ok {
				return false
			}
		}
		return m.env.shared.loaded && m.events != nil
	})
	return h
}

// run executes cmd in the background and queues what it returns.
func (h *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	counted := !longLived(cmd)
	if counted {
		h.pending.Add(1)
	}
	go func() {
		if counted {
			defer h.pending.Add(-1)
		}
		msg := cmd()
		if batch, ok := msg.(tea.BatchMsg); ok {
			for _, c := range batch {
				h.run(c)
			}
			return
		}
		if msg == nil {
			return
		}
		select {
		case h.msgs <- msg:
		case <-h.done:
		}
	}()
}

// send delivers msg to the model and runs the command it returns.
func (h *harness) send(msg tea.Msg) {
	_, cmd := h.m.Update(msg)
	h.run(cmd)
}

// key delivers key presses, named as tea's String() names them.
func (h *harness) key(names ...string) {
	for _, n := range names {
		h.send(keyPress(n))
	}
}

// until delivers queued messages until cond holds. Spinner ticks are
// dropped so the rendering stays deterministic.
func (h *harness) until(what string, cond func(*Model) bool) {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond(h.m) {
		select {
		case msg := <-h.msgs:
			if _, tick := msg.(spinner.TickMsg); tick {
				continue
			}
			h.send(msg)
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s; screen:\n%s", what, h.screen())
		}
	}
}

// settle delivers queued messages until every command that answers soon
// has answered and been handled: the engine calls the last key made are done.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case msg := <-h.msgs:
			if _, tick := msg.(spinner.TickMsg); tick {
				continue
			}
			h.send(msg)
			continue
		default:
		}
		if h.pending.Load() == 0 && len(h.msgs) == 0 {
			return
		}
		select {
		case msg := <-h.msgs:
			if _, tick := msg.(spinner.TickMsg); tick {
				continue
			}
			h.send(msg)
		case <-time.After(time.Millisecond):
		case <-deadline:
			h.t.Fatalf("the console did not settle; screen:\n%s", h.screen())
		}
	}
}

// screen is the rendered screen without colour or attributes.
func (h *harness) screen() string { return ansi.Strip(h.m.View().Content) }

// keyPress builds the key press tea reports for a key name.
func keyPress(name string) tea.KeyPressMsg {
	switch name {
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "left":
		return tea.KeyPressMsg{Code: tea.KeyLeft}
	case "right":
		return tea.KeyPressMsg{Code: tea.KeyRight}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "home":
		return tea.KeyPressMsg{Code: tea.KeyHome}
	case "end":
		return tea.KeyPressMsg{Code: tea.KeyEnd}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	}
	r := []rune(name)
	if len(r) == 1 && r[0] >= 'A' && r[0] <= 'Z' {
		return tea.KeyPressMsg{Code: r[0] + 'a' - 'A', ShiftedCode: r[0], Mod: tea.ModShift, Text: name}
	}
	return tea.KeyPressMsg{Code: r[0], Text: name}
}

// typeText is the key presses that type s.
func typeText(s string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		out = append(out, string(r))
	}
	return out
}

// stripANSI removes styles from s.
func stripANSI(s string) string { return ansi.Strip(s) }

// displayWidth is how many cells s takes on a terminal.
func displayWidth(s string) int { return ansi.StringWidth(s) }

// inPhase is a harness condition: a run is under way in phase.
func inPhase(phase string) func(*Model) bool {
	return func(m *Model) bool { p := m.env.shared.progress; return p != nil && p.Phase == phase }
}
