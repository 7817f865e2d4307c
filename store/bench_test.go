package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// The scale the store must handle: 150,000 EAS records on 100,000 mailboxes,
// 150,000 Intune records, a full journal and run history.
const (
	scaleRecords   = 150_000
	scaleMDM       = 150_000
	scaleMailboxes = 100_000
	scaleJournal   = DefaultMaxJournalEntries
	scaleRuns      = DefaultMaxRuns
)

// fixture is a store file at full scale, built once per test binary and
// copied by benchmarks that write to it.
var fixture struct {
	once sync.Once
	dir  string
	path string
	snap *engine.Commit
	err  error
}

// scaleSnapshot is the full first snapshot commit (built once: it takes
// about a second).
func scaleSnapshot() *engine.Commit {
	fixture.once.Do(buildFixture)
	return fixture.snap
}

// scaleStore returns the path of the full-scale fixture store.
func scaleStore(b *testing.B) string {
	b.Helper()
	fixture.once.Do(buildFixture)
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	return fixture.path
}

func buildFixture() {
	fixture.snap = newGen(42).snapshot(scaleRecords, scaleMDM, scaleMailboxes)
	fixture.dir, fixture.err = os.MkdirTemp("", "easgate-store-bench")
	if fixture.err != nil {
		return
	}
	fixture.path = filepath.Join(fixture.dir, "scale.db")
	fixture.err = writeScaleStore(fixture.path, fixture.snap, scaleJournal, scaleRuns)
}

// writeScaleStore writes the snapshot, journal entries in batches and a run
// history into a new store at path.
func writeScaleStore(path string, snap *engine.Commit, journal, runs int) error {
	s, err := Open(path, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Commit(context.Background(), snap); err != nil {
		return err
	}
	if err := fillJournal(s, snap, journal); err != nil {
		return err
	}
	// Runs straight into the bucket: saving 1,000 runs one commit (one
	// fsync) at a time would only slow the fixture down.
	return s.update(func(tx *bolt.Tx) error {
		for i := range runs {
			r := plausibleRun(i, t0.Add(time.Duration(i-runs)*2*time.Hour))
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := putRun(tx, runStart(&r), r.ID, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// plausibleRun is a finished full run with its phases.
func plausibleRun(i int, started time.Time) engine.Run {
	r := engine.Run{ID: fmt.Sprintf("run-%06d", i), Kind: engine.RunFull, Trigger: engine.TriggerSchedule,
		Status: engine.StatusSucceeded, Started: started, Finished: started.Add(3 * time.Minute),
		Server: "ex01.contoso.local", PlanID: fmt.Sprintf("plan-%06d", i),
		Counts:       engine.Counts{EASDevices: scaleRecords, MDMDevices: scaleMDM, Merged: 120_000, Unmerged: 30_000},
		JournalFirst: uint64(i) * 400, JournalLast: uint64(i)*400 + 399,
		Problems: []string{"2 notification(s) failed; they are retried next run"}}
	for _, name := range []string{engine.PhaseObserveExchange, engine.PhaseObserveIntune, engine.PhasePlan,
		engine.PhaseApply, engine.PhaseNotify, engine.PhaseSave} {
		r.Phases = append(r.Phases, engine.PhaseTiming{Name: name, Started: started, Duration: 20 * time.Second})
	}
	return r
}

// fillJournal appends n begin/end entries for the snapshot's devices, in
// batches of 20,000.
func fillJournal(s *Store, snap *engine.Commit, n int) error {
	g := newGen(7)
	const batch = 20_000
	for done := 0; done < n; done += batch {
		entries := make([]engine.JournalEntry, 0, batch)
		for i := done; i < min(n, done+batch); i++ {
			r := &snap.PutRecords.Items[(i/2)%len(snap.PutRecords.Items)]
			stage := engine.StageBegin
			if i%2 == 1 {
				stage = engine.StageEnd
			}
			entries = append(entries, g.journalEntry(runIDOf(i/3000), r.Key(), stage))
		}
		if _, err := s.RecordChanges(context.Background(), entries, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// reportStore adds the file size and bytes written to a benchmark's output.
func reportStore(b *testing.B, s *Store, writtenBefore int64) {
	b.Helper()
	st, err := s.Stats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.FileSize)/1e6, "file-MB")
	if st.BytesWritten > writtenBefore {
		b.ReportMetric(float64(st.BytesWritten-writtenBefore)/1e6/float64(b.N), "written-MB/op")
	}
}

// BenchmarkCommitFull commits the full first snapshot (150,000 records,
// 150,000 MDM records, 100,000 mailboxes, ~120,000 owned entries) into a new
// store, in one transaction.
func BenchmarkCommitFull(b *testing.B) {
	snap := scaleSnapshot()
	dir := b.TempDir()
	var last *Store
	var written int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if last != nil {
			_ = last.Close()
		}
		s, err := Open(filepath.Join(dir, fmt.Sprintf("full-%d.db", i)), Options{})
		if err != nil {
			b.Fatal(err)
		}
		last = s
		b.StartTimer()
		if _, err := s.Commit(context.Background(), snap); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st, _ := s.Stats()
		written += st.BytesWritten
		b.StartTimer()
	}
	b.StopTimer()
	st, _ := last.Stats()
	b.ReportMetric(float64(st.FileSize)/1e6, "file-MB")
	b.ReportMetric(float64(written)/1e6/float64(b.N), "written-MB/op")
	_ = last.Close()
}

// deltaCommit changes 1% of records, MDM records and mailboxes, and saves a
// run, as a quick sync that found a few changes would.
func deltaCommit(snap *engine.Commit, round int, expect uint64) *engine.Commit {
	c := &engine.Commit{Expect: expect, Meta: &engine.Meta{LastQuick: t0.Add(time.Duration(round) * time.Minute)}}
	for i := round % 100; i < len(snap.PutRecords.Items); i += 100 {
		r := snap.PutRecords.Items[i]
		r.LastSync = r.LastSync.Add(time.Duration(round+1) * time.Minute)
		r.Decision.Reason += " (rechecked)"
		c.PutRecords.Items = append(c.PutRecords.Items, r)
	}
	for i := round % 100; i < len(snap.PutMDM.Items); i += 100 {
		m := snap.PutMDM.Items[i]
		m.LastSync = m.LastSync.Add(time.Duration(round+1) * time.Minute)
		m.Compliance = engine.ComplianceNoncompliant
		c.PutMDM.Items = append(c.PutMDM.Items, m)
	}
	for i := round % 100; i < len(snap.PutMailboxes.Items); i += 100 {
		m := snap.PutMailboxes.Items[i]
		m.Allowed = append(append([]string(nil), m.Allowed...), fmt.Sprintf("NEW%029d", round))
		c.PutMailboxes.Items = append(c.PutMailboxes.Items, m)
	}
	c.Run = &engine.Run{ID: fmt.Sprintf("delta-%06d", round), Kind: engine.RunQuick, Started: t0.Add(time.Duration(round) * time.Minute),
		Status: engine.StatusSucceeded, Counts: engine.Counts{EASDevices: scaleRecords}}
	return c
}

// copyStore copies the fixture to a new file in dir.
func copyStore(b *testing.B, src, dir string) string {
	b.Helper()
	dst := filepath.Join(dir, "copy.db")
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return dst
}

// BenchmarkCommitDelta commits a 1% delta (1,500 records, 1,500 MDM
// records, 1,000 mailboxes) plus a run into the full-scale store.
func BenchmarkCommitDelta(b *testing.B) {
	snap := scaleSnapshot()
	s, err := Open(copyStore(b, scaleStore(b), b.TempDir()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	serial, err := s.serial()
	if err != nil {
		b.Fatal(err)
	}
	deltas := make([]*engine.Commit, 0, 100)
	for i := range 100 {
		deltas = append(deltas, deltaCommit(snap, i, 0))
	}
	st0, _ := s.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c := deltas[i%len(deltas)]
		c.Expect = serial
		if serial, err = s.Commit(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportStore(b, s, st0.BytesWritten)
}

// BenchmarkLoad loads the full-scale state. Each Load starts on a collected
// heap, as the service's one Load at start-up does; without the collection
// the previous iteration's 600 MB of garbage and the fixture's snapshot make
// a Load take about a second. heap-MB is what the loaded state keeps on the
// heap once the Load's garbage is collected: what the service lives with.
func BenchmarkLoad(b *testing.B) {
	s, err := Open(scaleStore(b), Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var retained uint64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		st, err := s.Load(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(st.Records) != scaleRecords {
			b.Fatalf("%d records", len(st.Records))
		}
		b.StopTimer()
		retained = liveHeap() - before
		runtime.KeepAlive(st)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(retained)/1e6, "heap-MB")
	reportStore(b, s, 0)
}

// BenchmarkMDMDevices reads the full-scale store's MDM records, as a quick
// sync and the link candidates do, and one of them, as the device view
// does.
func BenchmarkMDMDevices(b *testing.B) {
	s, err := Open(scaleStore(b), Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var id string
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			mdm, err := s.MDMDevices(context.Background())
			if err != nil || len(mdm) != scaleMDM {
				b.Fatalf("%d MDM records, %v", len(mdm), err)
			}
			for k := range mdm {
				id = k
				break
			}
		}
	})
	b.Run("one", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, ok, err := s.MDMDevice(context.Background(), id); !ok || err != nil {
				b.Fatalf("MDM record %s: %v, %v", id, ok, err)
			}
		}
	})
}

// liveHeap collects garbage and returns the bytes of live heap objects.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkOpen opens the full-scale store: read-write (a read-only
// preflight walk, then bbolt rebuilding its freelist) and read-only.
func BenchmarkOpen(b *testing.B) {
	path := scaleStore(b)
	for _, ro := range []bool{false, true} {
		b.Run(fmt.Sprintf("read-only=%v", ro), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				s, err := Open(path, Options{ReadOnly: ro})
				if err != nil {
					b.Fatal(err)
				}
				_ = s.Close()
			}
		})
	}
}

// BenchmarkJournal queries the full journal (400,000 entries) the ways the
// engine and console do.
func BenchmarkJournal(b *testing.B) {
	s, err := Open(scaleStore(b), Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	snap := scaleSnapshot()
	dev := snap.PutRecords.Items[12345].Key()
	tests := []struct {
		name string
		q    engine.JournalQuery
	}{
		{name: "device newest 200 (scans)", q: engine.JournalQuery{Device: dev, Limit: 200}},
		{name: "run without range (scans)", q: engine.JournalQuery{RunID: runIDOf(50)}},
		{name: "run in its range", q: engine.JournalQuery{RunID: runIDOf(50), FromSeq: 150_001, ToSeq: 153_000}},
		{name: "newest 100", q: engine.JournalQuery{Limit: 100}},
		{name: "range of 1000", q: engine.JournalQuery{FromSeq: 200_000, ToSeq: 200_999}},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				js, err := s.Journal(context.Background(), tc.q)
				if err != nil || len(js) == 0 {
					b.Fatalf("%d entries, %v", len(js), err)
				}
			}
		})
	}
}

// BenchmarkRecordChanges is one applier batch: 100 journal entries and 100
// owned entries in one fsynced transaction, into the full-scale store.
func BenchmarkRecordChanges(b *testing.B) {
	snap := scaleSnapshot()
	s, err := Open(copyStore(b, scaleStore(b), b.TempDir()), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := newGen(8)
	entries := make([]engine.JournalEntry, 100)
	owned := make([]engine.OwnedEntry, 100)
	for i := range entries {
		r := &snap.PutRecords.Items[i*997%len(snap.PutRecords.Items)]
		entries[i] = g.journalEntry("bench", r.Key(), engine.StageBegin)
		owned[i] = engine.OwnedEntry{Mailbox: r.Mailbox, DeviceID: r.DeviceID, List: engine.ListBlocked, Added: t0, RunID: "bench"}
	}
	st0, _ := s.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.RecordChanges(context.Background(), entries, owned, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportStore(b, s, st0.BytesWritten)
}

// BenchmarkCodec compares the binary codec with encoding/json on the
// full-scale device records.
func BenchmarkCodec(b *testing.B) {
	recs := scaleSnapshot().PutRecords.Items[:10_000]
	bin := make([]string, len(recs))
	js := make([][]byte, len(recs))
	var binSize, jsSize int
	for i := range recs {
		bin[i] = string(appendRecord(nil, &recs[i]))
		js[i], _ = json.Marshal(&recs[i])
		binSize += len(bin[i])
		jsSize += len(js[i])
	}
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := range b.N {
			buf = appendRecord(buf[:0], &recs[i%len(recs)])
		}
		b.ReportMetric(float64(binSize)/float64(len(recs)), "bytes/record")
	})
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if _, err := json.Marshal(&recs[i%len(recs)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(jsSize)/float64(len(recs)), "bytes/record")
	})
	b.Run("decode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			var r engine.DeviceRecord
			// As Check decodes: a copy of the value, as a string. (Load
			// reads the memory map; see BenchmarkLoad.)
			if err := decodeRecord(string([]byte(bin[i%len(bin)])), &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/json", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			var r engine.DeviceRecord
			if err := json.Unmarshal(js[i%len(js)], &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestScaleTargets checks the size targets at a tenth of full scale (full
// scale with EASGATE_STORE_SCALE=full, about 15 s): projected to 150,000
// records, the state (records, MDM records, mailboxes, owned entries) stays
// under 300 MB, and with a full default journal under 330 MB. It logs the
// times of a full commit, a Load, a 1% delta, a read-write open, Check and
// Compact. It is skipped under -short.
func TestScaleTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	div := 10
	if os.Getenv("EASGATE_STORE_SCALE") == "full" {
		div = 1
	}
	snap := newGen(42).snapshot(scaleRecords/div, scaleMDM/div, scaleMailboxes/div)
	s := openTemp(t, Options{})
	var ms runtime.MemStats
	start := time.Now()
	serial := mustCommit(t, s, snap)
	commitTook := time.Since(start)
	runtime.ReadMemStats(&ms)
	state, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if err := fillJournal(s, snap, scaleJournal/div); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	st := mustLoad(t, s)
	loadTook := time.Since(start)
	if len(st.Records) != scaleRecords/div || st.MDMStored != scaleMDM/div || len(st.Mailboxes) != scaleMailboxes/div {
		t.Fatalf("loaded %d records, %d MDM, %d mailboxes", len(st.Records), st.MDMStored, len(st.Mailboxes))
	}
	st = nil
	full, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	mustCommit(t, s, deltaCommit(snap, 1, serial))
	deltaTook := time.Since(start)
	start = time.Now()
	s = reopen(t, s, Options{})
	openTook := time.Since(start)
	start = time.Now()
	if errs := s.Check(); len(errs) != 0 {
		t.Errorf("Check: %v", errs)
	}
	checkTook := time.Since(start)
	start = time.Now()
	compacted, err := s.Compact(filepath.Join(t.TempDir(), "compact.db"))
	if err != nil {
		t.Fatal(err)
	}
	compactTook := time.Since(start)

	mb := func(n int64) float64 { return float64(n) * float64(div) / 1e6 }
	t.Logf("1/%d scale: full commit %v (heap after %.0f MB), Load %v, 1%% delta %v, read-write open %v, Check %v, Compact %v",
		div, commitTook, float64(ms.HeapAlloc)/1e6, loadTook, deltaTook, openTook, checkTook, compactTook)
	t.Logf("projected to full scale: state %.0f MB, with %d journal entries %.0f MB, compacted %.0f MB (the file grows ahead of the data by up to 16 MB: %.0f MB now)",
		mb(state.DataSize), scaleJournal, mb(full.DataSize), mb(compacted), float64(full.FileSize-full.DataSize)/1e6)
	if mb(state.DataSize) > 300 {
		t.Errorf("state would take %.0f MB at full scale, want under 300 MB", mb(state.DataSize))
	}
	if mb(full.DataSize) > 330 {
		t.Errorf("state and a full journal would take %.0f MB at full scale, want under 330 MB", mb(full.DataSize))
	}
}
