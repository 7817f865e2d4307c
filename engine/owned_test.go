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

// refusingExchange applies every change but the additions for the device
// IDs in refuse, which fail for good (as a mailbox that is gone does).
type refusingExchange struct {
	fakeExchange
	refuse map[string]bool
}

func (f *refusingExchange) ApplyChanges(ctx context.Context, cs []engine.Change) ([]engine.ChangeResult, error) {
	out, err := f.fakeExchange.ApplyChanges(ctx, cs)
	for i := range out {
		if f.refuse[out[i].DeviceID] {
			out[i].OK, out[i].Error = false, "couldn't find the mailbox"
		}
	}
	return out, err
}

// spyStore is the real store, which notes what each commit puts and
// deletes among the owned entries, and can fail the journal writes that
// follow a batch.
type spyStore struct {
	*store.Store
	failAfter bool // RecordChanges that disown entries fails

	mu      sync.Mutex
	puts    int
	deletes []engine.OwnedKey
}

func (s *spyStore) RecordChanges(ctx context.Context, entries []engine.JournalEntry, owned []engine.OwnedEntry, disowned []engine.OwnedKey) ([]engine.JournalEntry, error) {
	if s.failAfter && len(disowned) > 0 {
		return nil, errors.New("disk full")
	}
	return s.Store.RecordChanges(ctx, entries, owned, disowned)
}

func (s *spyStore) Commit(ctx context.Context, c *engine.Commit) (uint64, error) {
	s.mu.Lock()
	s.puts += c.PutOwned.Len()
	s.deletes = append(s.deletes, c.DeleteOwned...)
	s.mu.Unlock()
	return s.Store.Commit(ctx, c)
}

// TestRunCommitsOnlyOwnedEntriesTheJournalMissed runs a full sync whose
// changes add list entries, two of which Exchange refuses. The applier
// records each entry before its batch and disowns the refused ones after
// it, so the run's commit has nothing left to write, unless recording
// after a batch failed: then the commit deletes what the store still holds.
func TestRunCommitsOnlyOwnedEntriesTheJournalMissed(t *testing.T) {
	for _, failAfter := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal after the batch fails=%v", failAfter), func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Second)
			inv := &engine.ExchangeInventory{Org: engine.OrgSettings{DefaultAccessLevel: "Allow"}}
			var mdm []engine.MDMDevice
			for i := range 12 {
				addEnrolled(inv, &mdm, fmt.Sprintf("u%03d@contoso.com", i), fmt.Sprintf("Appl%03d", i), fmt.Sprintf("m%03d", i), now)
			}
			ex := &refusingExchange{fakeExchange: fakeExchange{inv: inv, applied: map[engine.DeviceKey]time.Time{}},
				refuse: map[string]bool{"Appl003": true, "Appl007": true}}
			path := filepath.Join(t.TempDir(), "easgate.db")
			real, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st := &spyStore{Store: real, failAfter: failAfter}
			e, err := engine.New(engine.Deps{Exchange: ex, ExchangeWriter: ex, Intune: &fakeIntune{devices: mdm},
				Mailer: &slowMailer{sent: map[engine.DeviceKey]time.Time{}}, Store: st},
				engine.Options{Policy: engine.DefaultPolicy(), ApplyBatch: 5, ApplyParallel: 2})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := e.Start(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := e.Sync(ctx, engine.SyncRequest{Kind: engine.RunFull})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Run.Counts.ChangesApplied != 10 || rep.Run.Counts.ChangesFailed != 2 {
				t.Fatalf("counts %+v: want 10 changes applied and 2 failed", rep.Run.Counts)
			}
			_ = e.Close()
			if err := real.Close(); err != nil {
				t.Fatal(err)
			}

			refused := []engine.OwnedKey{
				engine.OwnedKeyOf("u003@contoso.com", engine.ListAllowed, "Appl003"),
				engine.OwnedKeyOf("u007@contoso.com", engine.ListAllowed, "Appl007"),
			}
			if st.puts != 0 {
				t.Errorf("the run's commit wrote %d owned entries the applier had recorded", st.puts)
			}
			var wantDeletes []engine.OwnedKey
			if failAfter {
				wantDeletes = refused
			}
			slices.Sort(st.deletes)
			if !slices.Equal(st.deletes, wantDeletes) {
				t.Errorf("the run's commit deleted owned entries %v, want %v", st.deletes, wantDeletes)
			}

			again, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			saved, err := again.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(saved.Owned) != 10 {
				t.Errorf("the store holds %d owned entries, want the 10 that Exchange took", len(saved.Owned))
			}
			for _, k := range refused {
				if _, ok := saved.Owned[k]; ok {
					t.Errorf("the store still owns %s, whose addition Exchange refused", k)
				}
			}
		})
	}
}
