package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// smallStage stages commits of 10 entries or more, 7 at a time, so that
// small fixtures cross batch boundaries.
var smallStage = stageSize{min: 10, batch: 7}

// hasStage reports whether the store holds the staging bucket.
func hasStage(t testing.TB, s *Store) bool {
	t.Helper()
	var found bool
	if err := s.view(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketStage) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

// TestStagedCommitEqualsOneTransaction commits the same first snapshot,
// with a run, journal entries, owned entries and links, to a store that
// stages it and to one that writes it in one transaction, and compares
// what each loads.
func TestStagedCommitEqualsOneTransaction(t *testing.T) {
	build := func() *engine.Commit {
		c := newGen(7).snapshot(100, 90, 60)
		c.PutLinks.Items = []engine.Link{{Device: c.PutRecords.Items[3].Key(), MDMID: c.PutMDM.Items[2].ID, Kind: engine.LinkManual, Created: t0, By: "admin"}}
		c.Run = &engine.Run{ID: "run-0001", Started: t0, Finished: t0.Add(5e9), Kind: engine.RunFull}
		c.Journal = []engine.JournalEntry{{Time: t0, RunID: "run-0001", Kind: engine.JournalRun, Message: "full sync"}}
		// A key put twice: the later item wins in both ways of writing.
		dup := c.PutRecords.Items[5]
		dup.DeviceModel = "replaced"
		c.PutRecords.Items = append(c.PutRecords.Items, dup)
		return c
	}

	staged := openTemp(t, Options{Clock: &fixedClock{t0}})
	staged.stage = smallStage
	before := staged.commits.Load()
	if got := mustCommit(t, staged, build()); got != 1 {
		t.Fatalf("staged commit returned serial %d, want 1", got)
	}
	// newStage, ceil(101/7) + ceil(90/7) + ceil(60/7) staging
	// transactions, the final one.
	if got, want := staged.commits.Load()-before, int64(1+15+13+9+1); got != want {
		t.Errorf("staged commit took %d write transactions, want %d", got, want)
	}
	if hasStage(t, staged) {
		t.Error("the stage is left behind after a staged commit")
	}

	single := openTemp(t, Options{Clock: &fixedClock{t0}})
	single.stage = stageSize{min: 1 << 30, batch: 1 << 30}
	before = single.commits.Load()
	mustCommit(t, single, build())
	if got := single.commits.Load() - before; got != 1 {
		t.Fatalf("unstaged commit took %d write transactions, want 1", got)
	}

	a, b := mustLoadAll(t, staged), mustLoadAll(t, single)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("staged and single-transaction commits load differently:\nstaged: %s\nsingle: %s", jsonOf(t, a), jsonOf(t, b))
	}
	if len(a.Records) != 100 || a.MDMStored != 90 || len(a.MDM) != 90 || len(a.Mailboxes) != 60 || len(a.Links) != 1 {
		t.Errorf("loaded %d records, %d (%d) MDM, %d mailboxes, %d links; want 100, 90, 60, 1", len(a.Records), a.MDMStored, len(a.MDM), len(a.Mailboxes), len(a.Links))
	}
	if r := a.Records[build().PutRecords.Items[5].Key()]; r.DeviceModel != "replaced" {
		t.Errorf("a key put twice holds model %q, want the later item's", r.DeviceModel)
	}
	runs, err := staged.Runs(context.Background(), 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs after a staged commit: %v, %v", runs, err)
	}
	if errs := staged.Check(); len(errs) > 0 {
		t.Fatalf("check after a staged commit: %v", errs)
	}

	// The next commit puts into buckets that are no longer empty: one
	// transaction, on top of the moved buckets.
	next := &engine.Commit{Expect: 1}
	for i := range 20 {
		r := a.Records[build().PutRecords.Items[i].Key()]
		r.Notify.Count = 9
		next.PutRecords.Items = append(next.PutRecords.Items, r)
	}
	before = staged.commits.Load()
	mustCommit(t, staged, next)
	if got := staged.commits.Load() - before; got != 1 {
		t.Errorf("a commit into a filled bucket took %d write transactions, want 1", got)
	}
	st := mustLoad(t, reopen(t, staged, Options{}))
	if st.Serial != 2 || len(st.Records) != 100 || st.Records[next.PutRecords.Items[0].Key()].Notify.Count != 9 {
		t.Errorf("after a second commit: serial %d, %d records", st.Serial, len(st.Records))
	}
}

// TestStagedCommitStaleWritesNothing refuses a staged commit on the wrong
// serial before it stages anything.
func TestStagedCommitStaleWritesNothing(t *testing.T) {
	s := openTemp(t, Options{})
	s.stage = smallStage
	c := newGen(3).snapshot(30, 30, 30)
	c.Expect = 4
	before := s.commits.Load()
	if _, err := s.Commit(context.Background(), c); !errors.Is(err, engine.ErrStaleSerial) {
		t.Fatalf("Commit with a stale serial: %v, want ErrStaleSerial", err)
	}
	if got := s.commits.Load() - before; got != 0 {
		t.Errorf("a stale staged commit wrote %d transactions", got)
	}
	if st := mustLoad(t, s); st.Serial != 0 || len(st.Records) != 0 {
		t.Errorf("after a stale commit: serial %d, %d records", st.Serial, len(st.Records))
	}
}

// countdownCtx reports itself cancelled from its n-th Err call on.
type countdownCtx struct {
	context.Context
	left atomic.Int32
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestStagedCommitCancelledLeavesTheOldState cancels a staged commit
// between its batches: the store keeps the state it had, drops the stage,
// and the next commit goes through.
func TestStagedCommitCancelledLeavesTheOldState(t *testing.T) {
	s := openTemp(t, Options{})
	s.stage = smallStage
	ctx := &countdownCtx{Context: context.Background()}
	ctx.left.Store(6) // Commit's own checks, then some batches
	_, err := s.Commit(ctx, newGen(5).snapshot(50, 40, 30))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled staged commit: %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "stage records") {
		t.Errorf("error %q does not say what it was doing", err)
	}
	if hasStage(t, s) {
		t.Error("a cancelled staged commit left its stage behind")
	}
	if st := mustLoad(t, s); st.Serial != 0 || len(st.Records) != 0 || st.MDMStored != 0 {
		t.Fatalf("after a cancelled commit: serial %d, %d records, %d MDM", st.Serial, len(st.Records), st.MDMStored)
	}
	if got := mustCommit(t, s, newGen(5).snapshot(50, 40, 30)); got != 1 {
		t.Fatalf("commit after a cancelled one returned serial %d", got)
	}
	if st := mustLoad(t, s); len(st.Records) != 50 || st.MDMStored != 40 || len(st.Mailboxes) != 30 {
		t.Errorf("after the retry: %d records, %d MDM, %d mailboxes", len(st.Records), st.MDMStored, len(st.Mailboxes))
	}
}

// TestOpenDropsAnUnfinishedStage leaves a stage behind as a process that
// died half-way would, and checks that a read-only open ignores it and a
// read-write open removes it, with the committed state unchanged.
func TestOpenDropsAnUnfinishedStage(t *testing.T) {
	s := openTemp(t, Options{})
	mustCommit(t, s, &engine.Commit{PutRecords: engine.Puts[engine.DeviceKey, engine.DeviceRecord]{Items: []engine.DeviceRecord{newGen(1).record(0)}}})
	want := mustLoad(t, s)
	if err := s.newStage([][]byte{bucketRecords}); err != nil {
		t.Fatal(err)
	}
	s.stage = smallStage
	more := newGen(2).snapshot(20, 0, 0)
	if err := stagePuts(context.Background(), s, bucketRecords, &more.PutRecords, recordKey, appendRecord); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(path, Options{ReadOnly: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("read-only open with a stage: %v", err)
	}
	if !hasStage(t, ro) {
		t.Fatal("the stage is gone before a read-write open")
	}
	if got := mustLoad(t, ro); !reflect.DeepEqual(got, want) {
		t.Errorf("a read-only load sees the stage: %d records", len(got.Records))
	}
	if errs := ro.Check(); len(errs) > 0 {
		t.Errorf("check with a stage: %v", errs)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	var logs logBuffer
	rw, err := Open(path, Options{Logger: logs.logger()})
	if err != nil {
		t.Fatalf("read-write open with a stage: %v", err)
	}
	defer rw.Close()
	if hasStage(t, rw) {
		t.Error("a read-write open left the stage")
	}
	if !logs.contains("commit that did not finish") {
		t.Errorf("the open did not say it removed the stage; logs:\n%s", logs.String())
	}
	if got := mustLoad(t, rw); !reflect.DeepEqual(got, want) {
		t.Errorf("state after dropping the stage: %d records, want %d", len(got.Records), len(want.Records))
	}
}

// A test binary started with stageEnv set to a directory commits staged
// first snapshots to new stores in it, one after another, printing
// "staging PATH" before each commit, until it is killed.
const stageEnv = "EASGATE_STORE_TEST_STAGE"

func stageForever(dir string) int {
	for i := 0; ; i++ {
		path := filepath.Join(dir, fmt.Sprintf("s%03d.db", i))
		s, err := Open(path, Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s.stage = stageSize{min: 10, batch: 5}
		fmt.Println("staging " + path)
		if _, err := s.Commit(context.Background(), newGen(uint64(i)).snapshot(1000, 1000, 500)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

// TestKillDuringStagedCommitIsAllOrNothing kills a process while it stages
// a first snapshot. Every store it leaves opens, passes its check and holds
// either the empty state or the whole snapshot; a read-write open drops the
// stage of the one it was writing.
func TestKillDuringStagedCommitIsAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills writer processes; takes seconds")
	}
	interrupted := 0
	for round := range 4 {
		dir := t.TempDir()
		cmd, sc := startWriter(t, stageEnv, dir)
		// Kill it in the middle of its first or second store: 500
		// staging transactions take a few hundred milliseconds.
		for n := 0; n <= round%2 && sc.Scan(); n++ {
		}
		time.Sleep(time.Duration(5+round*15) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		paths, err := filepath.Glob(filepath.Join(dir, "*.db"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("round %d: the writer left no store: %v", round, err)
		}
		for _, path := range paths {
			ro, err := Open(path, Options{ReadOnly: true, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("round %d: open %s after kill: %v", round, filepath.Base(path), err)
			}
			if hasStage(t, ro) {
				interrupted++
			}
			_ = ro.Close()
			s, err := Open(path, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("round %d: read-write open %s after kill: %v", round, filepath.Base(path), err)
			}
			if errs := s.Check(); len(errs) > 0 {
				t.Fatalf("round %d: check %s after kill: %v", round, filepath.Base(path), errs)
			}
			if hasStage(t, s) {
				t.Errorf("round %d: %s keeps its stage after a read-write open", round, filepath.Base(path))
			}
			st := mustLoad(t, s)
			empty := st.Serial == 0 && len(st.Records) == 0 && st.MDMStored == 0 && len(st.Mailboxes) == 0
			whole := st.Serial == 1 && len(st.Records) == 1000 && st.MDMStored == 1000 && len(st.Mailboxes) == 500
			if !empty && !whole {
				t.Errorf("round %d: %s holds serial %d with %d records, %d MDM, %d mailboxes: neither nothing nor the whole snapshot",
					round, filepath.Base(path), st.Serial, len(st.Records), st.MDMStored, len(st.Mailboxes))
			}
			_ = s.Close()
		}
	}
	// Staging takes far longer than the rest of a store's life: most
	// rounds must have hit it.
	if interrupted == 0 {
		t.Error("no round killed the writer while it staged; the test proves nothing")
	}
	t.Logf("%d of 4 rounds killed the writer mid-stage", interrupted)
}
