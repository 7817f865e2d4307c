package control

import (
	"context"
	"sync"
	"time"

	"easgate/engine"
)

// fakeAPI is an engine.API that records what it was asked and answers with
// canned values: the control socket's far edge in these unit tests.
type fakeAPI struct {
	mu    sync.Mutex
	calls map[string]any // method → its argument, as received
	err   error          // every call fails with it when set
	subs  []chan engine.Event
}

var _ engine.API = (*fakeAPI)(nil)

func newFake() *fakeAPI { return &fakeAPI{calls: map[string]any{}} }

func (f *fakeAPI) got(method string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method] = arg
	return f.err
}

func (f *fakeAPI) arg(method string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	fakeRun    = engine.Run{ID: "run-1", Kind: engine.RunFull, Trigger: engine.TriggerManual, Status: engine.StatusSucceeded, Started: t0, Finished: t0.Add(time.Minute), Counts: engine.Counts{EASDevices: 3, Blocked: 1}}
	fakeRecord = engine.DeviceRecord{EASDevice: engine.EASDevice{Mailbox: "anna@contoso.com", DeviceID: "ABC123", AccessState: engine.StateBlocked, FirstSync: t0},
		Decision: engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged, Reason: "not enrolled"}}
	fakePlan = &engine.Plan{ID: "run-1", Serial: 7, Changes: []engine.Change{{Mailbox: "anna@contoso.com", DeviceID: "ABC123", List: engine.ListBlocked, Op: engine.OpAdd, Reason: "not enrolled"}}}
)

func (f *fakeAPI) Status(ctx context.Context) (engine.Status, error) {
	return engine.Status{Counts: engine.Counts{EASDevices: 3}, LastRun: &fakeRun, HeldPlan: fakePlan.Summary(), Policy: "unmanaged: block",
		Exchange: []engine.Health{{Name: "ex01", OK: true, LastCall: t0}}}, f.got("Status", nil)
}

func (f *fakeAPI) Devices(ctx context.Context, q engine.DeviceQuery) ([]engine.DeviceRecord, error) {
	return []engine.DeviceRecord{fakeRecord}, f.got("Devices", q)
}

func (f *fakeAPI) Device(ctx context.Context, key engine.DeviceKey) (*engine.DeviceDetail, error) {
	return &engine.DeviceDetail{Record: fakeRecord}, f.got("Device", key)
}

func (f *fakeAPI) Runs(ctx context.Context, limit int) ([]engine.Run, error) {
	return []engine.Run{fakeRun}, f.got("Runs", limit)
}

func (f *fakeAPI) Journal(ctx context.Context, q engine.JournalQuery) ([]engine.JournalEntry, error) {
	return []engine.JournalEntry{{Seq: 4, Time: t0, Kind: engine.JournalAdmin, Actor: "anna", Message: "linked"}}, f.got("Journal", q)
}

func (f *fakeAPI) Sync(ctx context.Context, req engine.SyncRequest) (*engine.RunReport, error) {
	return &engine.RunReport{Run: fakeRun, Plan: fakePlan}, f.got("Sync", req)
}

func (f *fakeAPI) Subscribe(ctx context.Context) (<-chan engine.Event, error) {
	if err := f.got("Subscribe", nil); err != nil {
		return nil, err
	}
	ch := make(chan engine.Event, 16)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, c := range f.subs {
			if c == ch {
				f.subs = append(f.subs[:i], f.subs[i+1:]...)
				close(ch)
				return
			}
		}
	}()
	return ch, nil
}

// emit sends ev to every subscriber and reports how many there were.
func (f *fakeAPI) emit(ev engine.Event) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		ch <- ev
	}
	return len(f.subs)
}

// closeAll ends every subscription, as a stopping engine does.
func (f *fakeAPI) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		close(ch)
	}
	f.subs = nil
}

func (f *fakeAPI) RunDetail(ctx context.Context, id string) (*engine.RunDetail, error) {
	return &engine.RunDetail{Run: fakeRun, Plan: fakePlan}, f.got("RunDetail", id)
}

func (f *fakeAPI) Candidates(ctx context.Context, device engine.DeviceKey) ([]engine.Candidate, error) {
	return []engine.Candidate{{MDM: engine.MDMDevice{ID: "mdm-1"}, Suggested: true, Why: "same user"}}, f.got("Candidates", device)
}

func (f *fakeAPI) Logs(ctx context.Context, limit int) ([]engine.LogEntry, error) {
	return []engine.LogEntry{{Time: t0, Level: "INFO", Message: "sync started"}}, f.got("Logs", limit)
}

func (f *fakeAPI) Link(ctx context.Context, req engine.LinkRequest) error { return f.got("Link", req) }

func (f *fakeAPI) Unlink(ctx context.Context, req engine.DeviceRequest) error {
	return f.got("Unlink", req)
}

func (f *fakeAPI) Resend(ctx context.Context, req engine.ResendRequest) ([]engine.NotifyResult, error) {
	return []engine.NotifyResult{{Device: fakeRecord.Key(), To: "anna@contoso.com", OK: true}}, f.got("Resend", req)
}

func (f *fakeAPI) Preview(ctx context.Context, device engine.DeviceKey) (*engine.MailPreview, error) {
	return &engine.MailPreview{To: "anna@contoso.com", Subject: "Enroll your phone"}, f.got("Preview", device)
}

func (f *fakeAPI) Override(ctx context.Context, req engine.OverrideRequest) error {
	return f.got("Override", req)
}

func (f *fakeAPI) RemovePartnership(ctx context.Context, req engine.DeviceRequest) error {
	return f.got("RemovePartnership", req)
}

func (f *fakeAPI) Wipe(ctx context.Context, req engine.WipeRequest) error { return f.got("Wipe", req) }

func (f *fakeAPI) Statistics(ctx context.Context, device engine.DeviceKey) (*engine.DeviceStatistics, error) {
	return &engine.DeviceStatistics{Status: "DeviceOk", Fields: map[string]string{"DeviceOS": "iOS 18"}}, f.got("Statistics", device)
}

func (f *fakeAPI) Approve(ctx context.Context, req engine.PlanRequest) (*engine.RunReport, error) {
	return &engine.RunReport{Run: fakeRun}, f.got("Approve", req)
}

func (f *fakeAPI) Discard(ctx context.Context, req engine.PlanRequest) error {
	return f.got("Discard", req)
}

func (f *fakeAPI) Cancel(ctx context.Context, actor string) error { return f.got("Cancel", actor) }
