package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"easgate/engine"
)

// populated returns a store holding every kind of value, runs and journal.
func populated(t *testing.T) (*Store, *engine.State) {
	t.Helper()
	s := openTemp(t, Options{})
	c := newGen(5).snapshot(300, 300, 200)
	serial := mustCommit(t, s, c)
	c2 := fullCommit(t, serial)
	mustCommit(t, s, c2)
	g := newGen(6)
	var entries []engine.JournalEntry
	for i := range 50 {
		entries = append(entries, g.journalEntry("r2", engine.KeyOf("a@b.c", string(rune('a'+i%26))), engine.StageBegin))
	}
	if _, err := s.RecordChanges(ctx, entries, nil, nil); err != nil {
		t.Fatal(err)
	}
	return s, mustLoad(t, s)
}

// sameContent checks that other holds what s holds.
func sameContent(t *testing.T, s, other *Store, want *engine.State) {
	t.Helper()
	equalState(t, mustLoad(t, other), want)
	for _, q := range []engine.JournalQuery{{}, {Limit: 5}} {
		a, err1 := s.Journal(ctx, q)
		b, err2 := other.Journal(ctx, q)
		if err1 != nil || err2 != nil || jsonOf(t, a) != jsonOf(t, b) {
			t.Errorf("journals differ (%v, %v)", err1, err2)
		}
	}
	a, err1 := s.Runs(ctx, 0)
	b, err2 := other.Runs(ctx, 0)
	if err1 != nil || err2 != nil || jsonOf(t, a) != jsonOf(t, b) {
		t.Errorf("runs differ (%v, %v)", err1, err2)
	}
	// The journal sequence continues where it was.
	sa, _ := s.Stats()
	out, err := other.RecordChanges(ctx, []engine.JournalEntry{{Kind: engine.JournalAdmin}}, nil, nil)
	if err != nil || out[0].Seq != sa.JournalLast+1 {
		t.Errorf("next seq in the copy = %+v, %v; want %d", out, err, sa.JournalLast+1)
	}
}

func TestBackup(t *testing.T) {
	s, want := populated(t)
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v (buffer %d)", n, err, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	writeFile(t, path, buf.Bytes())
	b, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open backup: %v", err)
	}
	defer b.Close()
	if errs := b.Check(); len(errs) != 0 {
		t.Errorf("backup Check: %v", errs)
	}
	sameContent(t, s, b, want)
}

func TestBackupFile(t *testing.T) {
	s, want := populated(t)
	path := filepath.Join(t.TempDir(), "backup.db")
	writeFile(t, path, []byte("an older backup"))
	n, err := s.BackupFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != n {
		t.Fatalf("backup file %v, %v; want %d bytes", fi, err, n)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %#o, want 0600", fi.Mode().Perm())
	}
	if tmps, _ := filepath.Glob(path + ".tmp*"); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
	b, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sameContent(t, s, b, want)

	if _, err := s.BackupFile(s.Path()); err == nil {
		t.Error("BackupFile over the store itself succeeded")
	}
	if _, err := s.BackupFile(filepath.Join(t.TempDir(), "no", "such", "dir.db")); err == nil {
		t.Error("BackupFile into a missing directory succeeded")
	}
}

func TestCompact(t *testing.T) {
	s, _ := populated(t)
	// Free some space: delete most records.
	st := mustLoad(t, s)
	var del []engine.DeviceKey
	for k := range st.Records {
		del = append(del, k)
	}
	mustCommit(t, s, &engine.Commit{Expect: st.Serial, DeleteRecords: del[:len(del)-3]})
	want := mustLoad(t, s)
	before, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "compact.db")
	size, err := s.Compact(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compacted %d bytes into %d", before.FileSize, size)
	if size <= 0 || size > before.FileSize {
		t.Errorf("compacted size %d, store %d", size, before.FileSize)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
			t.Errorf("compacted file mode %#o", fi.Mode().Perm())
		}
	}
	c, err := Open(dst, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if errs := c.Check(); len(errs) != 0 {
		t.Errorf("compacted Check: %v", errs)
	}
	sameContent(t, s, c, want)

	if _, err := s.Compact(dst); err == nil {
		t.Error("Compact over an existing file succeeded")
	}
}

func TestCheckHealthyStore(t *testing.T) {
	s, _ := populated(t)
	if errs := s.Check(); len(errs) != 0 {
		t.Errorf("Check: %v", errs)
	}
	empty := openTemp(t, Options{})
	if errs := empty.Check(); len(errs) != 0 {
		t.Errorf("Check of an empty store: %v", errs)
	}
	_ = empty.Close()
	if errs := empty.Check(); len(errs) != 1 || !errors.Is(errs[0], ErrClosed) {
		t.Errorf("Check after Close: %v", errs)
	}
}

func TestStats(t *testing.T) {
	s, st := populated(t)
	got, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", got)
	want := Stats{Path: s.Path(), Schema: 1, Serial: st.Serial, Records: len(st.Records), MDM: st.MDMStored,
		Mailboxes: len(st.Mailboxes), Links: len(st.Links), Owned: len(st.Owned), Runs: 1, Journal: 51,
		JournalFirst: 1, JournalLast: 51}
	got2 := got
	got2.FileSize, got2.DataSize, got2.PageSize, got2.Created, got2.FreeBytes, got2.BytesWritten, got2.Commits = 0, 0, 0, want.Created, 0, 0, 0
	if got2 != want {
		t.Errorf("Stats\n got %+v\nwant %+v", got2, want)
	}
	if got.FileSize < 4096 || got.DataSize > got.FileSize || got.DataSize < 4096 || got.PageSize == 0 || got.Created.IsZero() || got.BytesWritten == 0 || got.Commits < 3 {
		t.Errorf("Stats sizes: %+v", got)
	}
}
