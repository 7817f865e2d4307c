package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"easgate/config"
	"easgate/engine"
	"easgate/engine/sim"
)

// startSim starts the simulators for a test, in a directory of its own.
func startSim(t testing.TB, users int, seed uint64) *sim.Sim {
	t.Helper()
	s, err := sim.Start(sim.Options{Users: users, Seed: seed, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start simulators: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openSim opens easgate on the simulators' generated config, as `easgate
// sync --config` would.
func openSim(t testing.TB, s *sim.Sim) *app {
	t.Helper()
	cfg, warnings, err := config.Load(s.Info.ConfigFile)
	if err != nil {
		t.Fatalf("load the simulator's config: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("config warnings: %q", warnings)
	}
	a, err := openWith(context.Background(), cfg, logOptions{file: cfg.Resolve(cfg.Log.File), level: "debug"}, openSync)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(a.close)
	return a
}

func syncNow(t *testing.T, a *app, req engine.SyncRequest) *engine.RunReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if req.Kind == "" {
		req.Kind = engine.RunFull
	}
	rep, err := a.engine.Sync(ctx, req)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rep
}

// assertExchangeAgrees checks, through the simulated Exchange's own state,
// that every device easgate decided to allow is on its mailbox's allowed
// list, every one it decided to block on the blocked list, and that the
// access easgate predicts is the access Exchange computes.
func assertExchangeAgrees(t *testing.T, a *app, s *sim.Sim) {
	t.Helper()
	recs, err := a.engine.Devices(context.Background(), engine.DeviceQuery{Filter: engine.FilterAll})
	if err != nil {
		t.Fatal(err)
	}
	s.Org.Mu.RLock()
	defer s.Org.Mu.RUnlock()
	checked := 0
	for _, r := range recs {
		if !r.IsEAS() {
			continue
		}
		u := s.Org.UserByUPN(r.Mailbox)
		if u == nil {
			t.Errorf("%s: no such mailbox in Exchange", r.Key())
			continue
		}
		p := u.Partnership(r.DeviceID)
		if p == nil {
			t.Errorf("%s: no such partnership in Exchange", r.Key())
			continue
		}
		inAllowed, inBlocked := containsFold(u.Allowed, r.DeviceID), containsFold(u.Blocked, r.DeviceID)
		switch {
		case r.Decision.Exempt:
		case r.Decision.Access == engine.AccessAllow && !inAllowed:
			t.Errorf("%s: easgate allows it (%s) but it is not on the allowed list %v", r.Key(), r.Decision.Reason, u.Allowed)
		case r.Decision.Access == engine.AccessBlock && !inBlocked:
			t.Errorf("%s: easgate blocks it (%s) but it is not on the blocked list %v", r.Key(), r.Decision.Reason, u.Blocked)
		case r.Decision.Access == engine.AccessAllow && inBlocked:
			t.Errorf("%s: allowed, yet on the blocked list", r.Key())
		}
		state, _ := s.Org.AccessOf(u, p)
		if string(r.AccessState) != state {
			t.Errorf("%s: easgate says %s, Exchange says %s", r.Key(), r.AccessState, state)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no device checked")
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func TestFirstFullSyncEndToEnd(t *testing.T) {
	s := startSim(t, 200, 1)
	a := openSim(t, s)
	rep := syncNow(t, a, engine.SyncRequest{Trigger: engine.TriggerManual})
	r := rep.Run
	if r.Status != engine.StatusSucceeded {
		t.Fatalf("run %s: %s (problems %q)", r.Status, r.Error, r.Problems)
	}
	c := r.Counts
	if c.EASDevices <= 200 || c.Merged == 0 || c.Unmerged == 0 || c.Allowed == 0 || c.Blocked == 0 {
		t.Errorf("counts = %+v: want > 200 EAS devices and some of each kind", c)
	}
	if c.ChangesApplied != c.ChangesPlanned || c.ChangesFailed != 0 {
		t.Errorf("changes: %d planned, %d applied, %d failed", c.ChangesPlanned, c.ChangesApplied, c.ChangesFailed)
	}
	assertExchangeAgrees(t, a, s)

	// Every notification reached the SMTP sink, addressed to its user.
	msgs := s.SMTP.Messages()
	if len(msgs) != c.NotificationsSent || c.NotificationsSent == 0 {
		t.Errorf("sink received %d mails, run says %d sent", len(msgs), c.NotificationsSent)
	}
	unmerged, _ := a.engine.Devices(context.Background(), engine.DeviceQuery{Filter: engine.FilterUnmerged})
	to := map[string]bool{}
	for _, m := range msgs {
		for _, rcpt := range m.To {
			to[strings.ToLower(rcpt)] = true
		}
	}
	for _, u := range unmerged {
		if !u.Decision.Exempt && !to[strings.ToLower(u.PrimarySMTP)] {
			t.Errorf("%s is unmerged but its user %s got no mail", u.Key(), u.PrimarySMTP)
		}
	}

	// The real clients spoke the real protocols: WinRM receives were
	// long-polls, not a busy loop, and Graph never saw a request without a
	// valid token.
	ws := s.WinRM.Stats()
	if ws.Commands == 0 || ws.Receives > 20*ws.Commands {
		t.Errorf("WinRM: %d commands took %d receives; a long-poll needs few", ws.Commands, ws.Receives)
	}
	if ws.Oversize != 0 {
		t.Errorf("WinRM answered %d envelopes over MaxEnvelopeSize", ws.Oversize)
	}
	if gs := s.Graph.Stats(); gs.Unauthorized != 0 || gs.Graph == 0 {
		t.Errorf("Graph: %d requests, %d unauthorized", gs.Graph, gs.Unauthorized)
	}
	if starts := s.Exchange.Starts(); starts > 4 {
		t.Errorf("%d PowerShell processes for one small run; inventory and apply should need one or two", starts)
	}

	// A second run finds nothing to do.
	again := syncNow(t, a, engine.SyncRequest{Trigger: engine.TriggerManual})
	if again.Run.Status != engine.StatusSucceeded || again.Run.Counts.ChangesPlanned != 0 || again.Run.Counts.NotificationsSent != 0 {
		t.Errorf("second run: %s, %d changes, %d mails; want nothing to do", again.Run.Status, again.Run.Counts.ChangesPlanned, again.Run.Counts.NotificationsSent)
	}
	runs, err := a.engine.Runs(context.Background(), 10)
	if err != nil || len(runs) != 2 || runs[0].ID != again.Run.ID {
		t.Errorf("run history = %d runs (%v), want both, newest first", len(runs), err)
	}
}

func TestEnrollmentIsAllowedByTheNextSync(t *testing.T) {
	s := startSim(t, 60, 3)
	a := openSim(t, s)
	syncNow(t, a, engine.SyncRequest{})
	unmerged, _ := a.engine.Devices(context.Background(), engine.DeviceQuery{Filter: engine.FilterUnmerged})
	var target *engine.DeviceRecord
	for i := range unmerged {
		if unmerged[i].Decision.Access == engine.AccessBlock {
			target = &unmerged[i]
			break
		}
	}
	if target == nil {
		t.Fatal("no blocked unmerged device in the generated org")
	}
	s.Org.Mu.Lock()
	_, err := s.Org.Enroll(target.Mailbox, target.DeviceID, "compliant", true, time.Now().UTC())
	s.Org.Mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	rep := syncNow(t, a, engine.SyncRequest{})
	if rep.Run.Status != engine.StatusSucceeded {
		t.Fatalf("run: %s %s", rep.Run.Status, rep.Run.Error)
	}
	d, err := a.engine.Device(context.Background(), target.Key())
	if err != nil {
		t.Fatal(err)
	}
	if d.Record.Decision.Access != engine.AccessAllow || d.Record.AccessState != engine.StateAllowed {
		t.Errorf("after enrolling: %+v", d.Record.Decision)
	}
	// The journal says what was done and why: the begin entry carries the
	// reason, the end entry the result.
	var why, done bool
	for _, j := range d.Journal {
		if j.Change == nil || j.Change.List != engine.ListAllowed || j.Change.Op != engine.OpAdd {
			continue
		}
		switch j.Stage {
		case engine.StageBegin:
			why = strings.Contains(j.Change.Reason, "enrolled in Intune and compliant")
		case engine.StageEnd:
			done = j.OK
		}
	}
	if !why || !done {
		t.Errorf("journal does not show the allow with its reason: %+v", d.Journal)
	}
	assertExchangeAgrees(t, a, s)
}
