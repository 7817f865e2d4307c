package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/store"
)

// The fakes below stand in for the adapters at the engine's edge, so that
// the test can see when each notification and each change happened.

type fakeExchange struct {
	inv *engine.ExchangeInventory

	mu      sync.Mutex
	applied map[engine.DeviceKey]time.Time // when each change reached Exchange
}

func (f *fakeExchange) Inventory(context.Context, engine.InventoryQuery) (*engine.ExchangeInventory, error) {
	return f.inv, nil
}

func (f *fakeExchange) ApplyChanges(_ context.Context, cs []engine.Change) ([]engine.ChangeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]engine.ChangeResult, len(cs))
	for i, c := range cs {
		f.applied[engine.KeyOf(c.Mailbox, c.DeviceID)] = time.Now()
		out[i] = engine.ChangeResult{Change: c, OK: true}
	}
	return out, nil
}

// addEnrolled adds to inv a mailbox upn whose iPhone easID syncs, allowed,
// and to mdm its Intune record mdmID, enrolled and compliant: a device the
// policy allows.
func addEnrolled(inv *engine.ExchangeInventory, mdm *[]engine.MDMDevice, upn, easID, mdmID string, now time.Time) {
	inv.Mailboxes = append(inv.Mailboxes, engine.Mailbox{UPN: upn, PrimarySMTP: upn, Allowed: []string{}, Blocked: []string{}})
	inv.Devices = append(inv.Devices, engine.EASDevice{Mailbox: upn, PrimarySMTP: upn, DeviceID: easID, DeviceType: "iPhone",
		ClientType: "EAS", AccessState: engine.StateAllowed, FirstSync: now.Add(-time.Hour)})
	*mdm = append(*mdm, engine.MDMDevice{ID: mdmID, UserPrincipalName: upn, Email: upn, EASDeviceID: easID,
		Compliance: engine.ComplianceCompliant, OperatingSystem: "iOS", Enrolled: now.Add(-2 * time.Hour)})
}

type fakeIntune struct{ devices []engine.MDMDevice }

func (f *fakeIntune) ManagedDevices(context.Context, engine.MDMQuery) (*engine.MDMInventory, error) {
	return &engine.MDMInventory{Devices: f.devices}, nil
}

func (f *fakeIntune) GroupMembers(context.Context, string) ([]engine.DirectoryUser, error) {
	return nil, nil
}

type slowMailer struct {
	delay time.Duration

	mu   sync.Mutex
	sent map[engine.DeviceKey]time.Time // when each send returned
}

func (m *slowMailer) Send(_ context.Context, n engine.Notification) error {
	time.Sleep(m.delay)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent[n.Device] = time.Now()
	return nil
}

// TestChangesOverlapNotificationsButBlocksWaitForThem checks that changes
// that take no mail away go ahead while the notifications are still going
// out, and that every block reaches Exchange, and the journal, only after
// its device's notification.
func TestChangesOverlapNotificationsButBlocksWaitForThem(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	inv := &engine.ExchangeInventory{Org: engine.OrgSettings{DefaultAccessLevel: "Allow"}}
	var mdm []engine.MDMDevice
	// Enrolled, compliant devices in mailboxes that sort first: allow
	// changes, no notification.
	for i := range 40 {
		addEnrolled(inv, &mdm, fmt.Sprintf("a%03d@contoso.com", i), fmt.Sprintf("ApplA%03d", i), fmt.Sprintf("m%03d", i), now)
	}
	// Devices Intune has never seen: a notification, then a block.
	for i := range 40 {
		upn := fmt.Sprintf("z%03d@contoso.com", i)
		inv.Mailboxes = append(inv.Mailboxes, engine.Mailbox{UPN: upn, PrimarySMTP: upn, Allowed: []string{}, Blocked: []string{}})
		inv.Devices = append(inv.Devices, engine.EASDevice{Mailbox: upn, PrimarySMTP: upn, DeviceID: fmt.Sprintf("ApplZ%03d", i),
			DeviceType: "iPhone", ClientType: "EAS", AccessState: engine.StateAllowed, FirstSync: now.Add(-time.Hour)})
	}
	ex := &fakeExchange{inv: inv, applied: map[engine.DeviceKey]time.Time{}}
	mailer := &slowMailer{delay: 10 * time.Millisecond, sent: map[engine.DeviceKey]time.Time{}}
	st, err := store.Open(filepath.Join(t.TempDir(), "easgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pol := engine.DefaultPolicy()
	pol.Safety = engine.Safety{MaxNewBlocks: 1000}
	e, err := engine.New(engine.Deps{Exchange: ex, ExchangeWriter: ex, Intune: &fakeIntune{devices: mdm}, Mailer: mailer, Store: st},
		engine.Options{Policy: pol, ApplyBatch: 10, ApplyParallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	rep, err := e.Sync(ctx, engine.SyncRequest{Kind: engine.RunFull})
	if err != nil || rep.Run.Status != engine.StatusSucceeded {
		t.Fatalf("sync: %v %+v", err, rep.Run)
	}
	if rep.Run.Counts.NotificationsSent != 40 || rep.Run.Counts.ChangesApplied != 80 {
		t.Fatalf("counts %+v: want 40 notifications and 80 changes", rep.Run.Counts)
	}

	var lastMail time.Time
	for k, at := range mailer.sent {
		if at.After(lastMail) {
			lastMail = at
		}
		applied, ok := ex.applied[k]
		if !ok || applied.Before(at) {
			t.Errorf("%s blocked at %v, its notification sent at %v", k, applied, at)
		}
	}
	overlapped := 0
	for i := range 40 {
		if ex.applied[engine.KeyOf(fmt.Sprintf("a%03d@contoso.com", i), fmt.Sprintf("ApplA%03d", i))].Before(lastMail) {
			overlapped++
		}
	}
	if overlapped == 0 {
		t.Error("no allow change went out while notifications were still being sent")
	}

	journal, err := st.Journal(ctx, engine.JournalQuery{RunID: rep.Run.ID})
	if err != nil {
		t.Fatal(err)
	}
	notified := map[engine.DeviceKey]uint64{}
	for _, j := range journal {
		if j.Kind == engine.JournalNotify && j.OK {
			notified[j.Device] = j.Seq
		}
	}
	if len(notified) != 40 {
		t.Fatalf("%d notifications journaled, want 40", len(notified))
	}
	for _, j := range journal {
		if j.Kind != engine.JournalChange || j.Stage != engine.StageBegin || !j.Change.Blocks() {
			continue
		}
		if seq, ok := notified[j.Device]; !ok || seq > j.Seq {
			t.Errorf("block of %s journaled at %d, its notification at %d", j.Device, j.Seq, seq)
		}
	}
}
