package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// recoverInterrupted finds a run that stopped mid-apply (the process was
// killed, the machine lost power) by its journal entries: they carry a run ID
// no saved run has. It records that run as failed, with the changes that were
// in flight, so the history is complete and an admin can see what happened;
// the next run reconciles Exchange from the level, whatever those changes did.
func (e *Engine) recoverInterrupted(ctx context.Context) error {
	runs, err := e.deps.Store.Runs(ctx, 50)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	var after uint64
	for _, r := range runs {
		known[r.ID] = true
		after = max(after, r.JournalLast)
	}
	entries, err := e.deps.Store.Journal(ctx, JournalQuery{FromSeq: after + 1})
	if err != nil {
		return err
	}
	type trace struct {
		first, last JournalEntry
		begun       map[changeKey]Change
		ended       int
		failed      int
	}
	traces := map[string]*trace{}
	var order []string
	for _, j := range entries {
		if j.RunID == "" || known[j.RunID] {
			continue
		}
		t := traces[j.RunID]
		if t == nil {
			t = &trace{first: j, begun: map[changeKey]Change{}}
			traces[j.RunID] = t
			order = append(order, j.RunID)
		}
		t.last = j
		if j.Kind != JournalChange || j.Change == nil {
			continue
		}
		k := keyOfChange(*j.Change)
		switch j.Stage {
		case StageBegin:
			t.begun[k] = *j.Change
		case StageEnd:
			if _, ok := t.begun[k]; ok {
				delete(t.begun, k)
				t.ended++
				if !j.OK {
					t.failed++
				}
			}
		}
	}
	for _, id := range order {
		t := traces[id]
		inFlight := make([]string, 0, len(t.begun))
		for _, c := range t.begun {
			inFlight = append(inFlight, fmt.Sprintf("%s %s on %s's %s list", c.Op, c.DeviceID, c.Mailbox, c.List))
		}
		slices.Sort(inFlight)
		msg := fmt.Sprintf("interrupted: easgate stopped while applying; %d change(s) finished (%d failed), %d were in flight and are reconciled by the next run",
			t.ended, t.failed, len(inFlight))
		e.log.Warn("found an interrupted run", "run", id, "finished", t.ended, "in_flight", len(inFlight))
		note := JournalEntry{Time: e.now(), RunID: id, Kind: JournalRun, Actor: "easgate", Message: msg}
		if len(inFlight) > 0 {
			note.Message += ": " + strings.Join(firstN(inFlight, 20), "; ")
		}
		saved, err := e.deps.Store.RecordChanges(ctx, []JournalEntry{note}, nil, nil)
		if err != nil {
			return err
		}
		if strings.HasPrefix(id, "admin-") {
			continue // an admin's action, not a run of the history
		}
		r := &Run{ID: id, Kind: RunFull, Trigger: TriggerManual, Status: StatusFailed, Started: t.first.Time,
			Finished: t.last.Time, Error: msg, JournalFirst: t.first.Seq, JournalLast: t.last.Seq}
		if t.first.Kind == JournalRun && t.first.Stage == StageBegin {
			// "quick sync started (schedule, by easgate)"
			kind, rest, _ := strings.Cut(t.first.Message, " sync started (")
			trigger, _, _ := strings.Cut(rest, ",")
			r.Kind, r.Trigger = RunKind(kind), Trigger(trigger)
		}
		if len(saved) > 0 {
			r.JournalLast = saved[0].Seq
		}
		r.Problems = inFlight
		if err := e.deps.Store.SaveRun(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}
