package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"easgate/engine"
)

var ctx = context.Background()

// fullCommit sets every kind of state, a run and journal entries, with every
// field of every value filled.
func fullCommit(t testing.TB, expect uint64) *engine.Commit {
	rec := filled[engine.DeviceRecord](t, 1)
	mdm := filled[engine.MDMDevice](t, 2)
	mb := filled[engine.Mailbox](t, 3)
	mb.UPN = "Anna.Berg@Contoso.com"
	link := filled[engine.Link](t, 4)
	own := filled[engine.OwnedEntry](t, 5)
	meta := filled[engine.Meta](t, 6)
	plan := filled[engine.Plan](t, 7)
	run := filled[engine.Run](t, 8)
	j := filled[engine.JournalEntry](t, 9)
	ov := filled[engine.Override](t, 10)
	return &engine.Commit{
		Expect: expect, Meta: &meta,
		PutRecords:   engine.Puts[engine.DeviceKey, engine.DeviceRecord]{Items: []engine.DeviceRecord{rec}},
		PutMDM:       engine.Puts[string, engine.MDMDevice]{Items: []engine.MDMDevice{mdm}},
		PutMailboxes: engine.Puts[string, engine.Mailbox]{Items: []engine.Mailbox{mb}},
		PutLinks:     engine.Puts[engine.DeviceKey, engine.Link]{Items: []engine.Link{link}},
		PutOwned:     engine.Puts[engine.OwnedKey, engine.OwnedEntry]{Items: []engine.OwnedEntry{own}},
		PutOverrides: []engine.Override{ov},
		SetHeldPlan:  true, HeldPlan: &plan, Run: &run, Journal: []engine.JournalEntry{j},
	}
}

// wantState is the state fullCommit leads to from an empty store.
func wantState(c *engine.Commit, serial uint64) *engine.State {
	st := engine.NewState()
	st.Serial = serial
	st.Meta = *c.Meta
	st.HeldPlan = c.HeldPlan
	for _, r := range c.PutRecords.Items {
		st.Records[r.Key()] = r
	}
	st.MDMStored = c.PutMDM.Len()
	for _, m := range c.PutMailboxes.Items {
		st.Mailboxes[lower(m.UPN)] = m
	}
	for _, l := range c.PutLinks.Items {
		st.Links[l.Device] = l
	}
	for _, o := range c.PutOwned.Items {
		st.Owned[o.Key()] = o
	}
	for _, o := range c.PutOverrides {
		st.Overrides[o.Device] = o
	}
	return st
}

func lower(s string) string { return strings.ToLower(s) }

// equalState compares states; JSON-encoded values (Meta, the plan) come back
// with times in UTC, so compare those by their JSON.
func equalState(t testing.TB, got, want *engine.State) {
	t.Helper()
	if got.Serial != want.Serial {
		t.Errorf("serial %d, want %d", got.Serial, want.Serial)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"records", got.Records, want.Records},
		{"mdm records stored", got.MDMStored, want.MDMStored},
		{"mailboxes", got.Mailboxes, want.Mailboxes},
		{"links", got.Links, want.Links},
		{"owned", got.Owned, want.Owned},
		{"overrides", jsonOf(t, got.Overrides), jsonOf(t, want.Overrides)},
		{"meta", jsonOf(t, got.Meta), jsonOf(t, want.Meta)},
		{"held plan", jsonOf(t, got.HeldPlan), jsonOf(t, want.HeldPlan)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s differ:\n got %+v\nwant %+v", c.name, c.got, c.want)
		}
	}
}

// equalMDM checks that the store holds exactly want's MDM records, read
// whole and one by one.
func equalMDM(t testing.TB, s *Store, want []engine.MDMDevice) {
	t.Helper()
	got, err := s.MDMDevices(ctx)
	if err != nil {
		t.Fatalf("MDMDevices: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("the store holds %d MDM records, want %d", len(got), len(want))
	}
	for _, w := range want {
		if g := got[w.ID]; g == nil || *g != w {
			t.Errorf("MDMDevices[%s]\n got %+v\nwant %+v", w.ID, g, w)
		}
		one, ok, err := s.MDMDevice(ctx, w.ID)
		if err != nil || !ok || one != w {
			t.Errorf("MDMDevice(%s) = %+v, %v, %v; want %+v", w.ID, one, ok, err, w)
		}
	}
}

func TestRoundTripEveryBucket(t *testing.T) {
	s := openTemp(t, Options{})
	if st := mustLoad(t, s); st.Serial != 0 || len(st.Records) != 0 || st.HeldPlan != nil || st.Records == nil {
		t.Fatalf("empty store loads %+v", st)
	}
	c := fullCommit(t, 0)
	if serial := mustCommit(t, s, c); serial != 1 {
		t.Fatalf("serial %d, want 1", serial)
	}
	want := wantState(c, 1)
	equalState(t, mustLoad(t, s), want)
	equalMDM(t, s, c.PutMDM.Items)

	// The same after reopening: everything is on disk.
	s = reopen(t, s, Options{})
	equalState(t, mustLoad(t, s), want)
	equalMDM(t, s, c.PutMDM.Items)
	runs, err := s.Runs(ctx, 0)
	if err != nil || len(runs) != 1 || jsonOf(t, runs[0]) != jsonOf(t, *c.Run) {
		t.Errorf("Runs = %+v, %v; want the committed run", runs, err)
	}
	js, err := s.Journal(ctx, engine.JournalQuery{})
	if err != nil || len(js) != 1 {
		t.Fatalf("Journal = %+v, %v", js, err)
	}
	wantJ := c.Journal[0]
	wantJ.Seq = 1
	if !reflect.DeepEqual(js[0], wantJ) {
		t.Errorf("journal entry\n got %+v\nwant %+v", js[0], wantJ)
	}

	// Deletes remove each kind; clearing the held plan removes it.
	c2 := &engine.Commit{Expect: 1,
		DeleteRecords: []engine.DeviceKey{c.PutRecords.Items[0].Key()}, DeleteMDM: []string{c.PutMDM.Items[0].ID},
		DeleteMailbox: []string{"anna.berg@contoso.com"}, DeleteLinks: []engine.DeviceKey{c.PutLinks.Items[0].Device},
		DeleteOwned: []engine.OwnedKey{c.PutOwned.Items[0].Key()}, DeleteOverrides: []engine.DeviceKey{c.PutOverrides[0].Device},
		SetHeldPlan: true}
	if serial := mustCommit(t, s, c2); serial != 2 {
		t.Fatalf("serial %d, want 2", serial)
	}
	st := mustLoad(t, s)
	if len(st.Records)+st.MDMStored+len(st.Mailboxes)+len(st.Links)+len(st.Owned)+len(st.Overrides) != 0 || st.HeldPlan != nil {
		t.Errorf("after deletes: %+v", st)
	}
	equalMDM(t, s, nil)
	if _, ok, err := s.MDMDevice(ctx, c.PutMDM.Items[0].ID); ok || err != nil {
		t.Errorf("a deleted MDM record reads back: %v, %v", ok, err)
	}
	if jsonOf(t, st.Meta) != jsonOf(t, *c.Meta) {
		t.Errorf("meta changed by a commit without Meta")
	}
}

func TestCommitSerial(t *testing.T) {
	run := &engine.Run{ID: "r1", Started: t0, Status: engine.StatusSucceeded}
	entry := engine.JournalEntry{Time: t0, Kind: engine.JournalAdmin, Actor: "admin", Message: "approved"}
	rec := newGen(1).record(1)
	tests := []struct {
		name       string
		commit     engine.Commit // Expect is set to the current serial
		wantSerial uint64        // after the commit, starting from 1
	}{
		{name: "empty commit", commit: engine.Commit{}, wantSerial: 1},
		{name: "run only", commit: engine.Commit{Run: run}, wantSerial: 1},
		{name: "journal only", commit: engine.Commit{Journal: []engine.JournalEntry{entry}}, wantSerial: 1},
		{name: "run and journal", commit: engine.Commit{Run: run, Journal: []engine.JournalEntry{entry}}, wantSerial: 1},
		{name: "meta", commit: engine.Commit{Meta: &engine.Meta{MDMCount: 3}}, wantSerial: 2},
		{name: "record", commit: engine.Commit{PutRecords: engine.Puts[engine.DeviceKey, engine.DeviceRecord]{Items: []engine.DeviceRecord{rec}}}, wantSerial: 2},
		{name: "delete of a missing record", commit: engine.Commit{DeleteRecords: []engine.DeviceKey{"x/y"}}, wantSerial: 2},
		{name: "clear the held plan", commit: engine.Commit{SetHeldPlan: true}, wantSerial: 2},
		{name: "owned entry", commit: engine.Commit{PutOwned: engine.Puts[engine.OwnedKey, engine.OwnedEntry]{Items: []engine.OwnedEntry{{Mailbox: "a", DeviceID: "b", List: engine.ListAllowed}}}}, wantSerial: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t, Options{})
			mustCommit(t, s, &engine.Commit{Meta: &engine.Meta{}})
			c := tc.commit
			c.Expect = 1
			if got := mustCommit(t, s, &c); got != tc.wantSerial {
				t.Errorf("Commit returned serial %d, want %d", got, tc.wantSerial)
			}
			if got := mustLoad(t, s).Serial; got != tc.wantSerial {
				t.Errorf("stored serial %d, want %d", got, tc.wantSerial)
			}
		})
	}
}

func TestCommitRejectsStaleSerialAndWritesNothing(t *testing.T) {
	s := openTemp(t, Options{})
	mustCommit(t, s, &engine.Commit{Meta: &engine.Meta{MDMCount: 1}})
	before := mustLoad(t, s)
	stale := fullCommit(t, 0)
	for _, expect := range []uint64{0, 2, 99} {
		stale.Expect = expect
		serial, err := s.Commit(ctx, stale)
		if !errors.Is(err, engine.ErrStaleSerial) {
			t.Fatalf("Expect %d: err = %v, want ErrStaleSerial", expect, err)
		}
		if serial != 0 {
			t.Errorf("Expect %d: serial %d returned with an error", expect, serial)
		}
	}
	// An empty commit is checked too.
	if _, err := s.Commit(ctx, &engine.Commit{Expect: 7}); !errors.Is(err, engine.ErrStaleSerial) {
		t.Errorf("empty stale commit: err = %v", err)
	}
	equalState(t, mustLoad(t, s), before)
	if runs, _ := s.Runs(ctx, 0); len(runs) != 0 {
		t.Errorf("a stale commit saved its run: %+v", runs)
	}
	if js, _ := s.Journal(ctx, engine.JournalQuery{}); len(js) != 0 {
		t.Errorf("a stale commit wrote its journal: %+v", js)
	}
}

func TestCommitRejectsBadKeys(t *testing.T) {
	tests := []struct {
		name   string
		commit engine.Commit
	}{
		{name: "mdm without id", commit: engine.Commit{PutMDM: engine.Puts[string, engine.MDMDevice]{Items: []engine.MDMDevice{{}}}}},
		{name: "mailbox without upn", commit: engine.Commit{PutMailboxes: engine.Puts[string, engine.Mailbox]{Items: []engine.Mailbox{{}}}}},
		{name: "link without device", commit: engine.Commit{PutLinks: engine.Puts[engine.DeviceKey, engine.Link]{Items: []engine.Link{{MDMID: "m"}}}}},
		{name: "run without id", commit: engine.Commit{Run: &engine.Run{}}},
		{name: "huge key", commit: engine.Commit{PutMDM: engine.Puts[string, engine.MDMDevice]{Items: []engine.MDMDevice{{ID: string(make([]byte, 40000))}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t, Options{})
			if _, err := s.Commit(ctx, &tc.commit); err == nil {
				t.Fatal("Commit accepted it")
			}
			if st := mustLoad(t, s); st.Serial != 0 {
				t.Errorf("serial moved to %d", st.Serial)
			}
		})
	}
}

func TestRecordChangesAssignsIncreasingSeqsDurably(t *testing.T) {
	s := openTemp(t, Options{})
	g := newGen(2)
	own := engine.OwnedEntry{Mailbox: "Anna@contoso.com", DeviceID: "ABC", List: engine.ListAllowed, Added: t0, RunID: "r1"}
	var seqs []uint64
	for batch := range 3 {
		entries := []engine.JournalEntry{
			g.journalEntry("r1", engine.KeyOf("anna@contoso.com", fmt.Sprint("dev", batch)), engine.StageBegin),
			g.journalEntry("r1", engine.KeyOf("anna@contoso.com", fmt.Sprint("dev", batch)), engine.StageEnd),
		}
		var owned []engine.OwnedEntry
		var disowned []engine.OwnedKey
		switch batch {
		case 0:
			owned = []engine.OwnedEntry{own}
		case 2:
			disowned = []engine.OwnedKey{own.Key()}
		}
		out, err := s.RecordChanges(ctx, entries, owned, disowned)
		if err != nil {
			t.Fatalf("RecordChanges: %v", err)
		}
		if len(out) != len(entries) {
			t.Fatalf("got %d entries back, want %d", len(out), len(entries))
		}
		for i, e := range out {
			seqs = append(seqs, e.Seq)
			want := entries[i]
			want.Seq = e.Seq
			if !reflect.DeepEqual(e, want) {
				t.Errorf("returned entry %+v, want %+v", e, want)
			}
		}
		if batch == 0 {
			st := mustLoad(t, s)
			if _, ok := st.Owned[own.Key()]; !ok {
				t.Errorf("owned entry not stored: %+v", st.Owned)
			}
			if st.Serial != 0 {
				t.Errorf("RecordChanges moved the serial to %d", st.Serial)
			}
		}
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("seqs %v, want 1..%d", seqs, len(seqs))
		}
	}
	// Durable: a new process sees them and continues the sequence.
	s = reopen(t, s, Options{})
	js, err := s.Journal(ctx, engine.JournalQuery{})
	if err != nil || len(js) != 6 || js[5].Seq != 6 {
		t.Fatalf("after reopen Journal = %d entries, %v", len(js), err)
	}
	if st := mustLoad(t, s); len(st.Owned) != 0 {
		t.Errorf("disowned entry still stored: %+v", st.Owned)
	}
	out, err := s.RecordChanges(ctx, []engine.JournalEntry{{Kind: engine.JournalAdmin, Seq: 999}}, nil, nil)
	if err != nil || out[0].Seq != 7 {
		t.Errorf("next seq after reopen = %+v, %v; want 7", out, err)
	}
	if out, err := s.RecordChanges(ctx, nil, nil, nil); err != nil || len(out) != 0 {
		t.Errorf("empty RecordChanges = %v, %v", out, err)
	}
}

func TestJournalQueries(t *testing.T) {
	s := openTemp(t, Options{})
	g := newGen(3)
	anna := engine.KeyOf("anna@contoso.com", "IPHONE1")
	ben := engine.KeyOf("ben@contoso.com", "PIXEL2")
	// Seqs 1..40: runs r1 (1..20) and r2 (21..40), alternating devices;
	// seq 41 is an admin entry with no Device but a change of ben's device.
	var entries []engine.JournalEntry
	for i := range 40 {
		run := "r1"
		if i >= 20 {
			run = "r2"
		}
		dev := anna
		if i%2 == 1 {
			dev = ben
		}
		entries = append(entries, g.journalEntry(run, dev, engine.StageBegin))
	}
	entries = append(entries, engine.JournalEntry{Kind: engine.JournalAdmin, Actor: "admin",
		Change: &engine.Change{Mailbox: "Ben@Contoso.com", DeviceID: "Pixel2", List: engine.ListBlocked, Op: engine.OpAdd}})
	if _, err := s.RecordChanges(ctx, entries, nil, nil); err != nil {
		t.Fatal(err)
	}
	seqs := func(from, to uint64, step uint64) []uint64 {
		var out []uint64
		for i := from; i <= to; i += step {
			out = append(out, i)
		}
		return out
	}
	tests := []struct {
		name string
		q    engine.JournalQuery
		want []uint64
	}{
		{name: "everything", q: engine.JournalQuery{}, want: seqs(1, 41, 1)},
		{name: "range", q: engine.JournalQuery{FromSeq: 5, ToSeq: 8}, want: seqs(5, 8, 1)},
		{name: "from only", q: engine.JournalQuery{FromSeq: 39}, want: seqs(39, 41, 1)},
		{name: "to only", q: engine.JournalQuery{ToSeq: 3}, want: seqs(1, 3, 1)},
		{name: "range beyond the end", q: engine.JournalQuery{FromSeq: 100, ToSeq: 200}, want: nil},
		{name: "inverted range", q: engine.JournalQuery{FromSeq: 9, ToSeq: 2}, want: nil},
		{name: "limit takes the newest", q: engine.JournalQuery{Limit: 3}, want: seqs(39, 41, 1)},
		{name: "limit within a range", q: engine.JournalQuery{FromSeq: 5, ToSeq: 10, Limit: 2}, want: seqs(9, 10, 1)},
		{name: "limit larger than the range", q: engine.JournalQuery{FromSeq: 5, ToSeq: 7, Limit: 10}, want: seqs(5, 7, 1)},
		{name: "run", q: engine.JournalQuery{RunID: "r2"}, want: seqs(21, 40, 1)},
		{name: "run in a range", q: engine.JournalQuery{RunID: "r1", FromSeq: 18, ToSeq: 25}, want: seqs(18, 20, 1)},
		{name: "run with limit", q: engine.JournalQuery{RunID: "r1", Limit: 2}, want: seqs(19, 20, 1)},
		{name: "unknown run", q: engine.JournalQuery{RunID: "r9"}, want: nil},
		{name: "device", q: engine.JournalQuery{Device: anna}, want: seqs(1, 39, 2)},
		{name: "device matched by its change", q: engine.JournalQuery{Device: ben, FromSeq: 38}, want: []uint64{38, 40, 41}},
		{name: "device in any case", q: engine.JournalQuery{Device: "ANNA@contoso.com/iphone1", ToSeq: 4}, want: []uint64{1, 3}},
		{name: "device and run with limit", q: engine.JournalQuery{Device: ben, RunID: "r1", Limit: 2}, want: []uint64{18, 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js, err := s.Journal(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range js {
				got = append(got, e.Seq)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("seqs %v, want %v", got, tc.want)
			}
			if js == nil {
				t.Errorf("nil slice for an empty result; want empty")
			}
		})
	}
}

func TestRunsOrderAndUpsert(t *testing.T) {
	s := openTemp(t, Options{})
	// Saved out of order; one is saved twice with a new start time.
	for _, r := range []engine.Run{
		{ID: "b", Started: t0.Add(2 * time.Hour), Status: engine.StatusRunning},
		{ID: "a", Started: t0.Add(time.Hour)},
		{ID: "c", Started: t0.Add(3 * time.Hour)},
		{ID: "zero-time"},
		{ID: "b", Started: t0.Add(4 * time.Hour), Status: engine.StatusSucceeded},
		{ID: "d", Started: t0.Add(3 * time.Hour)}, // same start as c
	} {
		if err := s.SaveRun(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		limit int
		want  []string
	}{
		{name: "all", limit: 0, want: []string{"b", "d", "c", "a", "zero-time"}},
		{name: "limit", limit: 2, want: []string{"b", "d"}},
		{name: "limit beyond", limit: 50, want: []string{"b", "d", "c", "a", "zero-time"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs, err := s.Runs(ctx, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.ID)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("runs %v, want %v", ids, tc.want)
			}
			if runs[0].Status != engine.StatusSucceeded {
				t.Errorf("run b was not replaced: %+v", runs[0])
			}
		})
	}
	if err := s.SaveRun(ctx, &engine.Run{}); err == nil {
		t.Error("SaveRun accepted a run without an ID")
	}
}

func TestRetention(t *testing.T) {
	clock := &fixedClock{t: t0}
	tests := []struct {
		name        string
		opts        Options
		runs        int
		entries     int
		age         func(i int) time.Time // entry i's time
		wantRuns    []string              // newest first
		wantJournal [2]uint64             // first and last seq kept
	}{
		{
			name: "count limits", opts: Options{MaxRuns: 3, MaxJournalEntries: 10},
			runs: 5, entries: 25, wantRuns: []string{"run-4", "run-3", "run-2"}, wantJournal: [2]uint64{16, 25},
		},
		{
			name: "unlimited", opts: Options{MaxRuns: -1, MaxJournalEntries: -1},
			runs: 4, entries: 12, wantRuns: []string{"run-3", "run-2", "run-1", "run-0"}, wantJournal: [2]uint64{1, 12},
		},
		{
			name: "age limit", opts: Options{MaxJournalEntries: 100, MaxJournalAge: 10 * time.Hour},
			runs: 1, entries: 20, age: func(i int) time.Time { return t0.Add(-time.Duration(20-i) * time.Hour) },
			wantRuns: []string{"run-0"}, wantJournal: [2]uint64{11, 20},
		},
		{
			name: "count beats age", opts: Options{MaxJournalEntries: 5, MaxJournalAge: 10 * time.Hour},
			runs: 1, entries: 20, age: func(i int) time.Time { return t0.Add(-time.Duration(20-i) * time.Hour) },
			wantRuns: []string{"run-0"}, wantJournal: [2]uint64{16, 20},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Clock = clock
			s := openTemp(t, opts)
			var entries []engine.JournalEntry
			for i := range tc.entries {
				e := engine.JournalEntry{Kind: engine.JournalRun, Time: t0}
				if tc.age != nil {
					e.Time = tc.age(i)
				}
				entries = append(entries, e)
			}
			if _, err := s.RecordChanges(ctx, entries, nil, nil); err != nil {
				t.Fatal(err)
			}
			for i := range tc.runs {
				r := engine.Run{ID: fmt.Sprintf("run-%d", i), Started: t0.Add(time.Duration(i) * time.Minute)}
				mustCommit(t, s, &engine.Commit{Run: &r})
			}
			runs, err := s.Runs(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.ID)
			}
			if !reflect.DeepEqual(ids, tc.wantRuns) {
				t.Errorf("runs %v, want %v", ids, tc.wantRuns)
			}
			js, err := s.Journal(ctx, engine.JournalQuery{})
			if err != nil || len(js) == 0 {
				t.Fatalf("Journal: %d entries, %v", len(js), err)
			}
			if got := [2]uint64{js[0].Seq, js[len(js)-1].Seq}; got != tc.wantJournal {
				t.Errorf("journal keeps %v, want %v", got, tc.wantJournal)
			}
			// Prune finds nothing more to do.
			if res, err := s.Prune(ctx); err != nil || res != (PruneResult{}) {
				t.Errorf("Prune = %+v, %v", res, err)
			}
		})
	}
}

func TestPruneAppliesAgeAsTimePasses(t *testing.T) {
	clock := &fixedClock{t: t0}
	s := openTemp(t, Options{Clock: clock, MaxJournalAge: time.Hour})
	if _, err := s.RecordChanges(ctx, []engine.JournalEntry{{Time: t0}, {Time: t0.Add(time.Minute)}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	clock.t = t0.Add(time.Hour + 30*time.Second)
	res, err := s.Prune(ctx)
	if err != nil || res.Journal != 1 {
		t.Fatalf("Prune = %+v, %v; want one entry pruned", res, err)
	}
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	s := openTemp(t, Options{})
	for _, p := range []string{s.Path(), ownerPath(s.Path())} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ownerPath(s.Path())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("owner file left after Close: %v", err)
	}

	// A looser file opens with a warning.
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	s2, err := Open(s.Path(), Options{Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !logs.contains("accessible by other users") {
		t.Errorf("no warning about mode 0644; logs:\n%s", logs.String())
	}
}

func TestReadOnlyAndClosed(t *testing.T) {
	s := openTemp(t, Options{})
	mustCommit(t, s, fullCommit(t, 0))
	ro := reopen(t, s, Options{ReadOnly: true})
	if st := mustLoad(t, ro); st.Serial != 1 || len(st.Records) != 1 {
		t.Errorf("read-only Load = %+v", st)
	}
	// A second read-only opener shares the store.
	ro2, err := Open(ro.Path(), Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("second read-only open: %v", err)
	}
	_ = ro2.Close()

	writes := []struct {
		name string
		call func(*Store) error
	}{
		{"Commit", func(s *Store) error { _, err := s.Commit(ctx, &engine.Commit{Expect: 1}); return err }},
		{"RecordChanges", func(s *Store) error {
			_, err := s.RecordChanges(ctx, []engine.JournalEntry{{}}, nil, nil)
			return err
		}},
		{"SaveRun", func(s *Store) error { return s.SaveRun(ctx, &engine.Run{ID: "x"}) }},
		{"Prune", func(s *Store) error { _, err := s.Prune(ctx); return err }},
	}
	for _, w := range writes {
		t.Run(w.name+" read-only", func(t *testing.T) {
			if err := w.call(ro); !errors.Is(err, ErrReadOnly) {
				t.Errorf("err = %v, want ErrReadOnly", err)
			}
		})
	}
	if errs := ro.Check(); len(errs) != 0 {
		t.Errorf("read-only Check: %v", errs)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ro.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ro.Load(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if _, err := ro.Journal(ctx, engine.JournalQuery{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Journal after Close: %v", err)
	}

	// Read-only does not create a store.
	if _, err := Open(filepath.Join(t.TempDir(), "none.db"), Options{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only open of a missing file: %v", err)
	}
}

// TestWriteFailureKeepsPreviousState fills the file to its size limit, the
// way a full disk fails a write: the commit fails with context and the store
// keeps the state it had.
func TestWriteFailureKeepsPreviousState(t *testing.T) {
	s := openTemp(t, Options{MaxSize: 1 << 20})
	g := newGen(4)
	small := g.snapshot(10, 10, 10)
	serial := mustCommit(t, s, small)
	before := mustLoad(t, s)

	big := g.snapshot(5000, 0, 0)
	big.Expect = serial
	_, err := s.Commit(ctx, big)
	if err == nil {
		t.Fatal("a commit beyond MaxSize succeeded")
	}
	if !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Errorf("err = %v, want it to wrap the write error", err)
	}
	t.Logf("error: %v", err)
	equalState(t, mustLoad(t, s), before)

	// The store still works.
	if _, err := s.Commit(ctx, &engine.Commit{Expect: serial, Meta: &engine.Meta{MDMCount: 9}}); err != nil {
		t.Errorf("commit after the failure: %v", err)
	}
	if errs := s.Check(); len(errs) != 0 {
		t.Errorf("Check after the failure: %v", errs)
	}
}

func TestContextCancelled(t *testing.T) {
	s := openTemp(t, Options{})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Load: %v", err)
	}
	if _, err := s.Commit(cctx, fullCommit(t, 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit: %v", err)
	}
	if st := mustLoad(t, s); st.Serial != 0 {
		t.Errorf("a cancelled commit wrote")
	}
}

// TestConcurrentWriters runs what the engine does at once: parallel apply
// batches journaling and owning entries, a commit, and readers. Sequence
// numbers stay unique and gapless, and nothing is lost.
func TestConcurrentWriters(t *testing.T) {
	s := openTemp(t, Options{})
	const workers, batches, size = 4, 10, 20
	errs := make(chan error, workers+2)
	seqs := make(chan uint64, workers*batches*size)
	var wg sync.WaitGroup
	for w := range workers {
		g := newGen(uint64(w))
		wg.Go(func() {
			for b := range batches {
				var entries []engine.JournalEntry
				var owned []engine.OwnedEntry
				for i := range size {
					dev := engine.KeyOf(fmt.Sprintf("user%d@contoso.com", w), fmt.Sprintf("DEV%d-%d", b, i))
					entries = append(entries, g.journalEntry("r1", dev, engine.StageBegin))
					mb, id := dev.Split()
					owned = append(owned, engine.OwnedEntry{Mailbox: mb, DeviceID: id, List: engine.ListAllowed, RunID: "r1"})
				}
				out, err := s.RecordChanges(ctx, entries, owned, nil)
				if err != nil {
					errs <- err
					return
				}
				for _, e := range out {
					seqs <- e.Seq
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := s.Load(ctx); err != nil {
				errs <- err
				return
			}
			if _, err := s.Journal(ctx, engine.JournalQuery{Limit: 10, Device: "user1@contoso.com/dev3-4"}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		if _, err := s.Commit(ctx, &engine.Commit{Meta: &engine.Meta{MDMCount: 5}, Run: &engine.Run{ID: "r1", Started: t0}}); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	close(seqs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for seq := range seqs {
		if seen[seq] {
			t.Fatalf("seq %d handed out twice", seq)
		}
		seen[seq] = true
	}
	for i := uint64(1); i <= workers*batches*size; i++ {
		if !seen[i] {
			t.Fatalf("seq %d missing", i)
		}
	}
	st := mustLoad(t, s)
	if len(st.Owned) != workers*batches*size || st.Serial != 1 || st.Meta.MDMCount != 5 {
		t.Errorf("owned %d, serial %d, meta %+v", len(st.Owned), st.Serial, st.Meta)
	}
}
