package store

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// storeWithData writes a store of n records (plus MDM records and mailboxes)
// and closes it.
func storeWithData(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "easgate.db")
	s, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, newGen(9).snapshot(n, n, n*2/3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// editBolt changes a store file with bbolt directly.
func editBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedFileIsCorrupt(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{name: "garbage", damage: func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			writeFile(t, path, b)
		}},
		{name: "zeros", damage: func(t *testing.T, path string) { writeFile(t, path, make([]byte, 64<<10)) }},
		{name: "tiny", damage: func(t *testing.T, path string) { writeFile(t, path, []byte("not a database\n")) }},
		{name: "truncated to half", damage: func(t *testing.T, path string) { truncate(t, path, 0.5) }},
		{name: "truncated to nine tenths", damage: func(t *testing.T, path string) { truncate(t, path, 0.9) }},
		{name: "truncated by one page", damage: func(t *testing.T, path string) { truncate(t, path, 0.9999) }},
		{name: "truncated to the meta pages", damage: func(t *testing.T, path string) {
			if err := os.Truncate(path, 8192); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "both meta pages overwritten", damage: func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a bbolt file of another program", damage: func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			editBolt(t, path, func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("other"))
				return err
			})
		}},
		{name: "no schema version", damage: func(t *testing.T, path string) {
			editBolt(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keySchema) })
		}},
		{name: "a bucket missing", damage: func(t *testing.T, path string) {
			editBolt(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketJournal) })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := storeWithData(t, 1000)
			tc.damage(t, path)
			for _, ro := range []bool{false, true} {
				s, err := Open(path, Options{ReadOnly: ro, Logger: testLogger(t)})
				if err == nil {
					_ = s.Close()
					t.Fatalf("read-only %v: Open succeeded", ro)
				}
				t.Logf("read-only %v: %v", ro, err)
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("read-only %v: err = %v, want ErrCorrupt", ro, err)
				}
				if !strings.Contains(err.Error(), "restore it from a backup") || !strings.Contains(err.Error(), path) {
					t.Errorf("read-only %v: err = %q, want the path and the hint", ro, err)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// truncate cuts the file to a fraction of the data it holds (bbolt grows
// the file ahead of its data, so cutting the file's tail may lose nothing).
func truncate(t *testing.T, path string, frac float64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	_ = db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	_ = db.Close()
	if err := os.Truncate(path, int64(float64(size)*frac)&^4095); err != nil {
		t.Fatal(err)
	}
}

// TestRandomPageDamageNeverCrashes overwrites data pages with noise: Open,
// Load and Check may fail, with ErrCorrupt, but must not crash the process.
func TestRandomPageDamageNeverCrashes(t *testing.T) {
	for seed := range uint64(12) {
		path := storeWithData(t, 1000)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		pages := fi.Size() / 4096
		r := rand.New(rand.NewPCG(seed, 99))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		noise := make([]byte, 4096)
		for range 1 + seed%4 {
			for i := range noise {
				noise[i] = byte(r.Uint32())
			}
			page := 2 + r.Int64N(pages-2)
			if _, err := f.WriteAt(noise, page*4096); err != nil {
				t.Fatal(err)
			}
		}
		_ = f.Close()

		// Read-only first: it does not walk the file on open, so the
		// damage is met by Load, Journal and Check.
		for _, ro := range []bool{true, false} {
			s, err := Open(path, Options{ReadOnly: ro, Logger: testLogger(t)})
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("seed %d read-only %v: Open: %v, want ErrCorrupt", seed, ro, err)
				}
				continue
			}
			if _, err := s.Load(ctx); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("seed %d read-only %v: Load: %v, want ErrCorrupt", seed, ro, err)
			}
			if _, err := s.Journal(ctx, engine.JournalQuery{Device: "x/y"}); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("seed %d read-only %v: Journal: %v, want ErrCorrupt", seed, ro, err)
			}
			for _, err := range s.Check() {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("seed %d read-only %v: Check: %v, want ErrCorrupt", seed, ro, err)
				}
			}
			_ = s.Close()
		}
	}
}

func TestUndecodableValue(t *testing.T) {
	path := storeWithData(t, 50)
	editBolt(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Put([]byte("x@contoso.com/bad"), []byte{recordV1, 0xff})
	})
	s, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	_, err = s.Load(ctx)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "x@contoso.com/bad") {
		t.Errorf("Load: %v, want ErrCorrupt naming the key", err)
	}
	errs := s.Check()
	if len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) || !strings.Contains(errs[0].Error(), "x@contoso.com/bad") {
		t.Errorf("Check = %v, want one problem naming the key", errs)
	}
}

func TestValueUnderTheWrongKey(t *testing.T) {
	path := storeWithData(t, 5)
	r := newGen(1).record(1)
	editBolt(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Put([]byte("someone@else/id"), appendRecord(nil, &r))
	})
	s, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if errs := s.Check(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "belongs under key") {
		t.Errorf("Check = %v", errs)
	}
}

func TestEmptyFileIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "easgate.db")
	writeFile(t, path, nil)
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro, Logger: testLogger(t)})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), "backup") {
			t.Errorf("read-only %v: err = %v, want ErrCorrupt naming the empty file and the way out", ro, err)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Errorf("the empty file was touched: %v %v", fi, err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := newStoreFile(t)
	editBolt(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, u64(99)) })
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro, Logger: testLogger(t)})
		if !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("read-only %v: err = %v, want ErrNewerSchema", ro, err)
		}
		if !strings.Contains(err.Error(), "schema version 99") || !strings.Contains(err.Error(), "reads up to 1") {
			t.Errorf("read-only %v: err = %q", ro, err)
		}
	}
	// The refusal left the file alone.
	editBolt(t, path, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); !reflect.DeepEqual(v, u64(99)) {
			t.Errorf("schema is now %x", v)
		}
		return nil
	})
}

// TestMigrationHook opens a schema-1 store as a build whose layout is
// schema 2: the store is backed up first, then migrated.
func TestMigrationHook(t *testing.T) {
	path := newStoreFile(t)
	v2 := schema{
		version: 2,
		buckets: append(append([][]byte(nil), currentSchema.buckets...), []byte("extra")),
		migrations: []migration{{from: 1, name: "add the extra bucket", apply: func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("extra"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		}}},
	}

	// Read-only cannot migrate.
	if _, err := open(path, Options{ReadOnly: true, Logger: testLogger(t)}, v2); !errors.Is(err, ErrNeedsMigration) {
		t.Fatalf("read-only open of an old schema: %v, want ErrNeedsMigration", err)
	}

	clock := &fixedClock{t: t0}
	s, err := open(path, Options{Logger: testLogger(t), Clock: clock}, v2)
	if err != nil {
		t.Fatalf("open with migration: %v", err)
	}
	if st := mustLoad(t, s); st.Meta.MDMCount != 1 {
		t.Errorf("state lost in migration: %+v", st.Meta)
	}
	if err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("extra")).Get([]byte("k")); string(v) != "v" {
			t.Errorf("migration did not run")
		}
		if v := tx.Bucket(bucketMeta).Get(keySchema); !reflect.DeepEqual(v, u64(2)) {
			t.Errorf("schema %x after migration", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	// The backup is the store as it was: schema 1, openable by this build.
	backup := path + ".schema1-20250314T092653Z.bak"
	b, err := Open(backup, Options{ReadOnly: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer b.Close()
	if st := mustLoad(t, b); st.Meta.MDMCount != 1 || st.Serial != 1 {
		t.Errorf("backup holds %+v", st)
	}

	// A layout without a migration path fails clearly.
	v3 := schema{version: 3, buckets: v2.buckets}
	if _, err := open(path, Options{Logger: testLogger(t), Clock: clock}, v3); err == nil || !strings.Contains(err.Error(), "no migration from schema 2") {
		t.Errorf("open without a migration: %v", err)
	}
}

func TestBadJournalKey(t *testing.T) {
	path := storeWithData(t, 5)
	editBolt(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJournal).Put([]byte("short"), []byte{journalV1})
	})
	s, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []engine.JournalQuery{{}, {Limit: 3}} {
		if _, err := s.Journal(ctx, q); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a sequence number") {
			t.Errorf("Journal(%+v): %v", q, err)
		}
	}
	if _, err := s.Prune(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Prune: %v", err)
	}
	// Commits still work: pruning is housekeeping.
	if _, err := s.Commit(ctx, &engine.Commit{Expect: 1, Meta: &engine.Meta{MDMCount: 2}}); err != nil {
		t.Errorf("Commit: %v", err)
	}
	if errs := s.Check(); len(errs) == 0 {
		t.Error("Check found nothing")
	}
}
