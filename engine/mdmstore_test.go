package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/store"
)

// deltaIntune reads all devices for a full inventory and delta for a quick
// one, as Graph's managedDevices filtered by lastSyncDateTime does.
type deltaIntune struct {
	mu         sync.Mutex
	all, delta []engine.MDMDevice
}

func (f *deltaIntune) ManagedDevices(_ context.Context, q engine.MDMQuery) (*engine.MDMInventory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !q.Since.IsZero() {
		return &engine.MDMInventory{Quick: true, Since: q.Since, Devices: slices.Clone(f.delta)}, nil
	}
	return &engine.MDMInventory{Devices: slices.Clone(f.all)}, nil
}

func (f *deltaIntune) GroupMembers(context.Context, string) ([]engine.DirectoryUser, error) {
	return nil, nil
}

// mdmSpy is the real store, noting what each commit saves of MDM.
type mdmSpy struct {
	*store.Store
	mu      sync.Mutex
	puts    int
	replace bool
}

func (s *mdmSpy) Commit(ctx context.Context, c *engine.Commit) (uint64, error) {
	s.mu.Lock()
	s.puts, s.replace = c.PutMDM.Len(), c.ReplaceMDM
	s.mu.Unlock()
	return s.Store.Commit(ctx, c)
}

// TestMDMRecordsLiveInTheStore follows the MDM records through full and
// quick syncs and the admin's views, now that the engine's state holds
// only their count: a full sync leaves exactly Intune's inventory in the
// store, a quick one saves what changed, and the device view, the link
// candidates and a link read the saved records.
func TestMDMRecordsLiveInTheStore(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	inv := &engine.ExchangeInventory{Org: engine.OrgSettings{DefaultAccessLevel: "Allow"}}
	intune := &deltaIntune{}
	for i := range 4 {
		addEnrolled(inv, &intune.all, fmt.Sprintf("u%03d@contoso.com", i), fmt.Sprintf("Appl%03d", i), fmt.Sprintf("m%03d", i), now)
	}
	ex := &fakeExchange{inv: inv, applied: map[engine.DeviceKey]time.Time{}}
	real, err := store.Open(filepath.Join(t.TempDir(), "easgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	spy := &mdmSpy{Store: real}
	e, err := engine.New(engine.Deps{Exchange: ex, ExchangeWriter: ex, Intune: intune,
		Mailer: &slowMailer{sent: map[engine.DeviceKey]time.Time{}}, Store: spy}, engine.Options{Policy: engine.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(kind engine.RunKind) *engine.RunReport {
		t.Helper()
		rep, err := e.Sync(ctx, engine.SyncRequest{Kind: kind})
		if err != nil || rep.Run.Status != engine.StatusSucceeded {
			t.Fatalf("%s sync: %+v, %v", kind, rep, err)
		}
		return rep
	}
	saved := func() map[string]engine.MDMDevice {
		t.Helper()
		refs, err := real.MDMDevices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]engine.MDMDevice, len(refs))
		for k, r := range refs {
			m[k] = *r
		}
		return m
	}
	key := func(i int) engine.DeviceKey {
		return engine.KeyOf(fmt.Sprintf("u%03d@contoso.com", i), fmt.Sprintf("Appl%03d", i))
	}

	rep := run(engine.RunFull)
	if got := saved(); len(got) != 4 || got["m002"] != intune.all[2] {
		t.Fatalf("after the first full sync the store holds %v", got)
	}
	if rep.Run.Counts.MDMDevices != 4 || !spy.replace {
		t.Errorf("first full sync: counts %+v, replace %v", rep.Run.Counts, spy.replace)
	}
	d, err := e.Device(ctx, key(1))
	if err != nil || d.MDM == nil || *d.MDM != intune.all[1] {
		t.Fatalf("device view: %+v, %v; want its MDM record from the store", d, err)
	}

	// Intune retires m000, finds m001 noncompliant and enrols u000's new
	// phone, which reports no EAS ID.
	intune.mu.Lock()
	intune.all[1].Compliance = engine.ComplianceNoncompliant
	fresh := engine.MDMDevice{ID: "m004", UserPrincipalName: "u000@contoso.com", Email: "u000@contoso.com",
		Compliance: engine.ComplianceCompliant, OperatingSystem: "iOS", Enrolled: now.Add(-30 * time.Minute)}
	intune.all = append(intune.all[1:], fresh)
	intune.mu.Unlock()
	rep = run(engine.RunFull)
	got := saved()
	if _, ok := got["m000"]; ok || len(got) != 4 || got["m001"].Compliance != engine.ComplianceNoncompliant || got["m004"] != fresh {
		t.Fatalf("after the second full sync the store holds %v", got)
	}
	if rep.Run.Counts.MDMDevices != 4 {
		t.Errorf("second full sync counts %d MDM records, want 4", rep.Run.Counts.MDMDevices)
	}
	if st, err := e.Status(ctx); err != nil || st.Counts.MDMDevices != 4 {
		t.Errorf("status: %+v, %v", st.Counts, err)
	}
	if d, err := e.Device(ctx, key(0)); err != nil || d.MDM != nil || d.Record.Merged() {
		t.Errorf("u000's phone after its MDM record went: %+v, %v", d, err)
	}

	// A quick sync saves only what Intune reports changed.
	intune.mu.Lock()
	intune.delta = []engine.MDMDevice{intune.all[1]}
	intune.delta[0].Model = "iPhone16,1"
	changed := intune.delta[0]
	intune.mu.Unlock()
	run(engine.RunQuick)
	if spy.puts != 1 || spy.replace {
		t.Errorf("the quick sync's commit put %d MDM records (replace %v), want the 1 that changed", spy.puts, spy.replace)
	}
	if got := saved(); len(got) != 4 || got["m002"] != changed || got["m001"] != intune.all[0] {
		t.Errorf("after the quick sync the store holds %v", got)
	}

	// The admin links u000's phone to its new MDM record, found among the
	// candidates; an MDM ID the store does not hold is refused.
	cands, err := e.Candidates(ctx, key(0))
	if err != nil || len(cands) != 1 || cands[0].MDM != fresh {
		t.Fatalf("candidates for u000's phone: %+v, %v", cands, err)
	}
	if err := e.Link(ctx, engine.LinkRequest{Device: key(0), MDMID: "m000", Actor: "admin"}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("link to a retired MDM record: %v, want ErrNotFound", err)
	}
	if err := e.Link(ctx, engine.LinkRequest{Device: key(0), MDMID: "m004", Actor: "admin"}); err != nil {
		t.Fatalf("link: %v", err)
	}
	if d, err := e.Device(ctx, key(0)); err != nil || d.MDM == nil || d.MDM.ID != "m004" {
		t.Errorf("u000's phone after the link: %+v, %v", d, err)
	}
}
