package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim"
	"easgate/engine/sim/org"
)

// editConfig replaces text in the simulator's config file.
func editConfig(t *testing.T, s *sim.Sim, old, new string) {
	t.Helper()
	b, err := os.ReadFile(s.Info.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(s.Info.ConfigFile, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func record(t *testing.T, a *app, key engine.DeviceKey) engine.DeviceRecord {
	t.Helper()
	d, err := a.engine.Device(context.Background(), key)
	if err != nil {
		t.Fatalf("device %s: %v", key, err)
	}
	return d.Record
}

func pick(t *testing.T, a *app, f engine.DeviceFilter, ok func(*engine.DeviceRecord) bool) engine.DeviceRecord {
	t.Helper()
	recs, err := a.engine.Devices(context.Background(), engine.DeviceQuery{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if ok(&recs[i]) {
			return recs[i]
		}
	}
	t.Fatalf("no %s device fits", f)
	return engine.DeviceRecord{}
}

func succeeded(t *testing.T, rep *engine.RunReport) engine.Run {
	t.Helper()
	if rep.Run.Status != engine.StatusSucceeded {
		t.Fatalf("run %s: %s (%s) problems %q", rep.Run.ID, rep.Run.Status, rep.Run.Error, rep.Run.Problems)
	}
	return rep.Run
}

func TestQuickSyncFollowsIntuneAndExchange(t *testing.T) {
	s := startSim(t, 80, 21)
	a := openSim(t, s)
	succeeded(t, syncNow(t, a, engine.SyncRequest{}))

	// A user enrolls a blocked phone; another phone falls out of compliance;
	// a new phone syncs mail for the first time.
	enrolled := pick(t, a, engine.FilterUnmerged, func(r *engine.DeviceRecord) bool {
		return r.Decision.Access == engine.AccessBlock && r.DeviceType == "iPhone"
	})
	compliant := pick(t, a, engine.FilterAllowed, func(r *engine.DeviceRecord) bool {
		return r.Merged() && r.Decision.Code == engine.ReasonCompliant
	})
	now := time.Now().UTC()
	s.Org.Mu.Lock()
	if _, err := s.Org.Enroll(enrolled.Mailbox, enrolled.DeviceID, "compliant", true, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Org.SetCompliance(compliant.MDMID, "noncompliant", now); err != nil {
		t.Fatal(err)
	}
	newbie := &org.Partnership{DeviceID: "ApplNEWPHONE0001", DeviceType: "iPhone", DeviceModel: "iPhone17C3",
		DeviceOS: "iOS 18.3.2 22D82", UserAgent: "Apple-iPhone17C3/2203.82", FirstSync: now, LastSync: now, WhenChanged: now}
	newbieUser := s.Org.Users[3].UPN
	if err := s.Org.AddPartnership(newbieUser, newbie); err != nil {
		t.Fatal(err)
	}
	mails := len(s.SMTP.Messages())
	s.Org.Mu.Unlock()

	rep := syncNow(t, a, engine.SyncRequest{Kind: engine.RunQuick})
	r := succeeded(t, rep)
	if r.Kind != engine.RunQuick {
		t.Errorf("ran a %s sync, want quick", r.Kind)
	}
	if got := record(t, a, enrolled.Key()); got.Decision.Access != engine.AccessAllow || got.AccessState != engine.StateAllowed {
		t.Errorf("enrolled device after a quick sync: %s/%s: %s", got.Decision.Access, got.AccessState, got.Decision.Reason)
	}
	if got := record(t, a, compliant.Key()); got.Decision.Access != engine.AccessBlock || got.AccessState != engine.StateBlocked {
		t.Errorf("noncompliant device after a quick sync: %s/%s: %s", got.Decision.Access, got.AccessState, got.Decision.Reason)
	}
	if got := record(t, a, engine.KeyOf(newbieUser, newbie.DeviceID)); got.Decision.Access != engine.AccessBlock || got.Notify.Count != 1 {
		t.Errorf("new partnership after a quick sync: %s, notified %d times", got.Decision.Access, got.Notify.Count)
	}
	if len(s.SMTP.Messages()) != mails+1 {
		t.Errorf("quick sync sent %d mails, want 1 (the new phone's user)", len(s.SMTP.Messages())-mails)
	}
	assertExchangeAgrees(t, a, s)
}

func TestExcludedGroupGetsItsEntriesRemoved(t *testing.T) {
	s := startSim(t, 120, 4)
	a := openSim(t, s)
	succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	a.close()

	s.Org.Mu.RLock()
	var excluded []string
	for _, u := range s.Org.TransitiveUsers(org.GroupExempt) {
		excluded = append(excluded, strings.ToLower(u.UPN))
	}
	s.Org.Mu.RUnlock()
	if len(excluded) == 0 {
		t.Fatal("the generated exemption group is empty")
	}
	before := exchangeLists(s)
	editConfig(t, s, "notify:\n", "policy:\n  exclude_groups: ["+org.GroupExempt+"]\nnotify:\n")
	a = openSim(t, s)
	r := succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	if r.Counts.ChangesApplied == 0 {
		t.Fatal("excluding a group changed nothing")
	}
	after := exchangeLists(s)
	for _, e := range before {
		upn, _, _ := strings.Cut(e, "|")
		kept := slices.Contains(after, e)
		if slices.Contains(excluded, upn) {
			// Only the entries easgate made are gone; an admin's stay.
			if kept && !strings.Contains(e, "|allowed|appl") {
				t.Errorf("%s: entry of an excluded user kept", e)
			}
		} else if !kept {
			t.Errorf("%s: entry of a user still in scope removed", e)
		}
	}
	for _, upn := range excluded {
		recs, _ := a.engine.Devices(context.Background(), engine.DeviceQuery{Filter: engine.FilterExempt})
		for _, rec := range recs {
			if strings.EqualFold(rec.Mailbox, upn) && rec.Decision.Code != engine.ReasonOutOfScope && rec.Decision.Code != engine.ReasonAdminEntry && rec.Decision.Code != engine.ReasonNotEAS {
				t.Errorf("%s: excluded user's device decided %s", rec.Key(), rec.Decision.Code)
			}
		}
	}
	assertExchangeAgrees(t, a, s)
}

func TestIntuneReturningNothingBrakes(t *testing.T) {
	s := startSim(t, 80, 8)
	a := openSim(t, s)
	succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	before := exchangeLists(s)

	s.Org.Mu.Lock()
	for _, md := range slices.Clone(s.Org.Managed) {
		s.Org.RemoveManaged(md.ID)
	}
	s.Org.Mu.Unlock()
	rep := syncNow(t, a, engine.SyncRequest{})
	if rep.Run.Status != engine.StatusBraked || rep.Plan == nil || rep.Plan.Brake == nil ||
		!strings.Contains(rep.Plan.Brake.Reason, "Intune returned no devices") {
		t.Fatalf("run %s, plan %+v; want braked because Intune is empty", rep.Run.Status, rep.Plan)
	}
	if got := exchangeLists(s); !slices.Equal(got, before) {
		t.Errorf("a braked run changed Exchange: %d entries before, %d after", len(before), len(got))
	}
	st, _ := a.engine.Status(context.Background())
	if st.HeldPlan == nil || st.HeldPlan.ID != rep.Plan.ID {
		t.Errorf("status does not show the held plan")
	}

	// The CLI says so with exit code 4, and --yes would apply it.
	a.close()
	if r := run(t, "sync", "--config", s.Info.ConfigFile); r.code != exitBraked {
		t.Errorf("easgate sync on a braked plan: exit %d, want %d\n%s", r.code, exitBraked, r.stdout)
	}
	if got := exchangeLists(s); !slices.Equal(got, before) {
		t.Errorf("the CLI's braked run changed Exchange")
	}
}

func TestApproveAppliesExactlyTheHeldPlanUnlessStale(t *testing.T) {
	s := startSim(t, 100, 13)
	editConfig(t, s, "max_new_blocks: 50\n  max_new_blocks_percent: 40", "max_new_blocks: 5\n  max_new_blocks_percent: 1")
	a := openSim(t, s)
	rep := syncNow(t, a, engine.SyncRequest{})
	if rep.Run.Status != engine.StatusBraked {
		t.Fatalf("first sync of a new org with a tight brake: %s, want braked", rep.Run.Status)
	}
	held := rep.Plan
	ctx := context.Background()
	if _, err := a.engine.Approve(ctx, engine.PlanRequest{PlanID: "some-other-plan", Actor: "test"}); err == nil {
		t.Error("approving a plan that is not the held one succeeded")
	}
	approved, err := a.engine.Approve(ctx, engine.PlanRequest{PlanID: held.ID, Actor: "anna.admin"})
	if err != nil {
		t.Fatal(err)
	}
	r := succeeded(t, approved)
	if r.Counts.ChangesApplied != len(held.Changes) || r.PlanID != held.ID {
		t.Errorf("approved run applied %d of the held plan's %d changes", r.Counts.ChangesApplied, len(held.Changes))
	}
	assertExchangeAgrees(t, a, s)
	if st, _ := a.engine.Status(ctx); st.HeldPlan != nil {
		t.Error("the plan is still held after approval")
	}
	if _, err := a.engine.Approve(ctx, engine.PlanRequest{PlanID: held.ID}); err == nil {
		t.Error("approving twice succeeded")
	}
	j, _ := a.engine.Journal(ctx, engine.JournalQuery{})
	if !slices.ContainsFunc(j, func(e engine.JournalEntry) bool {
		return e.Kind == engine.JournalAdmin && e.Actor == "anna.admin" && strings.Contains(e.Message, "approved plan "+held.ID)
	}) {
		t.Error("the journal does not record who approved the plan")
	}

	// A plan held, then a change to the store (an admin's link): the plan
	// is stale and approving it is refused.
	s.Org.Mu.Lock()
	for _, md := range slices.Clone(s.Org.Managed) {
		s.Org.RemoveManaged(md.ID)
	}
	s.Org.Mu.Unlock()
	rep = syncNow(t, a, engine.SyncRequest{})
	if rep.Run.Status != engine.StatusBraked {
		t.Fatalf("Intune emptied: %s, want braked", rep.Run.Status)
	}
	dev := pick(t, a, engine.FilterAll, func(r *engine.DeviceRecord) bool { return r.IsEAS() && !r.Decision.Exempt })
	if err := a.engine.Override(ctx, engine.OverrideRequest{Device: dev.Key(), Access: engine.AccessAllow, Actor: "test", Note: "CEO"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.engine.Approve(ctx, engine.PlanRequest{PlanID: rep.Plan.ID}); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("approving a stale plan: %v, want ErrStalePlan", err)
	}
}

func TestSMTPDownStillBlocksAndRetriesNextRun(t *testing.T) {
	s := startSim(t, 80, 17)
	a := openSim(t, s)
	if err := s.SMTP.SetDown(true); err != nil {
		t.Fatal(err)
	}
	r := succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	if r.Counts.Blocked == 0 || r.Counts.ChangesFailed != 0 || r.Counts.NotificationsSent != 0 {
		t.Fatalf("with SMTP down: %+v; want blocks applied and no mail sent", r.Counts)
	}
	if !slices.ContainsFunc(r.Problems, func(p string) bool { return strings.Contains(p, "notification(s) failed") }) {
		t.Errorf("problems %q do not mention the failed notifications", r.Problems)
	}
	assertExchangeAgrees(t, a, s)
	unmerged := pick(t, a, engine.FilterUnmerged, func(r *engine.DeviceRecord) bool { return !r.Decision.Exempt })
	if unmerged.Notify.Count != 0 || unmerged.Notify.LastError == "" {
		t.Errorf("notify state after a failed send: %+v", unmerged.Notify)
	}

	if err := s.SMTP.SetDown(false); err != nil {
		t.Fatal(err)
	}
	r = succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	if r.Counts.NotificationsSent == 0 || len(s.SMTP.Messages()) != r.Counts.NotificationsSent {
		t.Errorf("next run sent %d mails, sink has %d", r.Counts.NotificationsSent, len(s.SMTP.Messages()))
	}
	if got := record(t, a, unmerged.Key()); got.Notify.Count != 1 || got.Notify.LastError != "" {
		t.Errorf("notify state after the retry: %+v", got.Notify)
	}
}

func TestAdminDigestAfterARunThatBlocked(t *testing.T) {
	s := startSim(t, 60, 9)
	editConfig(t, s, "notify:\n  enabled: true\n", "notify:\n  enabled: true\n  admin_digest: true\n")
	a := openSim(t, s)
	r := succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	var digest []string
	for _, m := range s.SMTP.Messages() {
		for _, to := range m.To {
			if to == "mobile-admins@contoso.com" {
				digest = append(digest, m.Subject, m.Text)
			}
		}
	}
	if len(digest) != 2 {
		t.Fatalf("admins got %d digest mail(s), want one", len(digest)/2)
	}
	if !strings.Contains(digest[0], "blocked") || !strings.Contains(digest[1], r.ID) {
		t.Errorf("digest: %q\n%s", digest[0], digest[1])
	}
	blocked := pick(t, a, engine.FilterBlocked, func(r *engine.DeviceRecord) bool { return r.Decision.Code == engine.ReasonUnmanaged })
	if !strings.Contains(digest[1], blocked.DeviceID) {
		t.Errorf("digest does not list %s", blocked.DeviceID)
	}
	// A run that blocks nothing sends none.
	n := len(s.SMTP.Messages())
	succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	if len(s.SMTP.Messages()) != n {
		t.Error("a run that blocked nothing sent a digest")
	}
}
