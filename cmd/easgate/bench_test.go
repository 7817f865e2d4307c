package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"easgate/internal/bench"
)

// TestBenchSmoke runs `easgate bench` at CI size: 1,000 mailboxes, the
// simulators and each sync in processes of their own, under a cost model
// scaled down to almost nothing, and a per-mailbox baseline of 100. It
// asserts the round trips that show batching, which do not depend on the
// machine: PowerShell starts bounded by the lanes and the apply batches,
// not by mailboxes; Graph requests by pages; SMTP sessions by mails per
// connection. Times are the full bench's business (BENCHMARKS.md).
func TestBenchSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rep, err := bench.Run(ctx, bench.Options{Binary: binary, Dir: t.TempDir(), Sizes: []int{1000}, Seed: 1,
		CostScale: 0.0005, Parallel: 4, ApplyBatch: 500, ChurnPercent: 1, Repeat: 1, BaselineSample: 100, Log: &log})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	if len(rep.Results) != 3 || len(rep.Baselines) != 1 {
		t.Fatalf("%d results and %d baselines, want 3 and 1", len(rep.Results), len(rep.Baselines))
	}
	const parallel, batch, perConn = 4, 500, 20
	first, steady, quick := rep.Results[0], rep.Results[1], rep.Results[2]
	tests := []struct {
		name    string
		r       bench.Result
		changes bool // the run applies changes
		quick   bool
	}{
		{name: bench.FirstFull, r: first, changes: true},
		{name: bench.SteadyFull, r: steady},
		{name: bench.QuickChurn, r: quick, changes: true, quick: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			if r.Scenario != tt.name || r.Users != 1000 || r.Problems != 0 {
				t.Fatalf("result %+v", r)
			}
			if tt.changes != (r.Changes > 0) {
				t.Errorf("%d changes applied", r.Changes)
			}
			// Inventory: one process (a quick one), or at most one per lane;
			// apply: one per batch.
			inventory := int64(parallel)
			if tt.quick {
				inventory = 1
			}
			applyBatches := int64((r.Changes + batch - 1) / batch)
			if r.Starts < 1+applyBatches || r.Starts > inventory+applyBatches {
				t.Errorf("%d PowerShell starts for %d changes, want %d to %d", r.Starts, r.Changes, 1+applyBatches, inventory+applyBatches)
			}
			// Each process costs a handful of WinRM requests (create,
			// command, sends, signal, delete) and its Receives, which grow
			// with output volume, not with mailboxes: the organisation's
			// 1,000 mailboxes and 1,500 partnerships fit well under 60 a
			// process.
			if r.WinRMRequests > 60*r.Starts {
				t.Errorf("%d WinRM requests for %d processes", r.WinRMRequests, r.Starts)
			}
			// Graph: discovery, a token and one request a page of 1,000
			// devices (one filtered page for a quick sync).
			pages := (r.Work.ManagedDevices + 999) / 1000
			if tt.quick {
				pages = 1
			}
			if r.GraphRequests < pages || r.GraphRequests > pages+3 {
				t.Errorf("%d Graph requests for %d pages", r.GraphRequests, pages)
			}
			if r.Mails != int64(r.Notifications) {
				t.Errorf("the sink took %d mails, easgate sent %d", r.Mails, r.Notifications)
			}
			if most := (r.Mails+perConn-1)/perConn + parallel; r.SMTPTLS > most {
				t.Errorf("%d SMTP TLS sessions for %d mails, want at most %d", r.SMTPTLS, r.Mails, most)
			}
			if r.Floor.Total <= 0 || r.Wall <= 0 || r.CPU <= 0 || r.MaxRSS <= 0 || r.Store <= 0 {
				t.Errorf("measurements missing: %+v", r.Measure)
			}
		})
	}
	for _, r := range rep.Results {
		t.Logf("%s: %d starts, %d WinRM requests, %d Graph requests, %d SMTP TLS sessions, %d changes, %d mails", r.Scenario, r.Starts, r.WinRMRequests, r.GraphRequests, r.SMTPTLS, r.Changes, r.Mails)
	}
	if first.Notifications == 0 || first.Work.Edits == 0 || first.Work.Edits > first.Changes {
		t.Errorf("first full sync: %d notifications, %d edits for %d changes", first.Notifications, first.Work.Edits, first.Changes)
	}

	b := rep.Baselines[0]
	if b.Mailboxes != 100 || b.Changes == 0 {
		t.Fatalf("baseline %+v", b.BaselineResult)
	}
	// The baseline starts PowerShell once to list the mailboxes, once per
	// mailbox and once per change: what batching saves.
	if want := int64(1 + b.Mailboxes + b.Changes); b.Starts != want {
		t.Errorf("baseline started PowerShell %d times, want %d", b.Starts, want)
	}

	var md strings.Builder
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 1,000 | first full sync |", "Floor: `floor = ", "### Targets at 1,000 mailboxes", "Baseline measured at 100 mailboxes"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}
