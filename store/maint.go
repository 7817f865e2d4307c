package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// Backup writes a consistent copy of the store to w while the store stays
// in use (one read transaction) and returns the bytes written. The copy is a
// valid store file.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up store %s: %w", s.path, err)
	}
	return n, nil
}

// BackupFile writes a consistent copy of the store to path: into a temporary
// file (mode 0600) beside it, fsynced, then renamed over path, so path holds
// either the old content or a complete backup. It returns the bytes written.
func (s *Store) BackupFile(path string) (int64, error) {
	if err := s.usable(false); err != nil {
		return 0, err
	}
	if same, _ := sameFile(path, s.path); same {
		return 0, fmt.Errorf("back up store %s: the backup would overwrite the store", s.path)
	}
	n, err := WriteFileAtomic(path, s.Backup)
	if err != nil {
		return n, fmt.Errorf("back up store %s to %s: %w", s.path, path, err)
	}
	return n, nil
}

// WriteFileAtomic writes path through a temporary file (mode 0600) in the
// same directory, fsynced and renamed over path, and syncs the directory:
// path holds either its old content or all that write wrote. It returns
// the bytes written. A backup streamed from the service lands this way
// too.
func WriteFileAtomic(path string, write func(w io.Writer) (int64, error)) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return 0, err
	}
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return n, err
	}
	return n, syncDir(dir)
}

// sameFile reports whether two paths name the same existing file.
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}

// compactTxSize bounds each transaction of a compaction, so that compacting
// a large store does not hold the whole copy in memory.
const compactTxSize = 64 << 20

// Compact writes a compacted copy of the store to dst, which must not exist:
// bbolt's compaction rewrites every bucket with full pages and no free
// space, and the file ends where the data does. It returns the size of the
// new file. To use it, stop easgate and
// move dst over the store (easgate store compact does this).
func (s *Store) Compact(dst string) (size int64, err error) {
	if err := s.usable(false); err != nil {
		return 0, err
	}
	if _, err := os.Stat(dst); err == nil {
		return 0, fmt.Errorf("compact store %s: %s already exists", s.path, dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("compact store %s: %w", s.path, err)
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, filepath.Base(dst)+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("compact store %s: %w", s.path, err)
	}
	tmpName := tmp.Name()
	_ = tmp.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(tmpName)
		}
	}()
	ddb, err := bolt.Open(tmpName, 0o600, &bolt.Options{
		Timeout: s.opts.LockTimeout, FreelistType: bolt.FreelistMapType, NoFreelistSync: true, NoSync: true,
	})
	if err != nil {
		return 0, fmt.Errorf("compact store %s: open %s: %w", s.path, tmpName, err)
	}
	err = s.compactInto(ddb)
	if err == nil {
		err = ddb.Sync()
	}
	var dataSize int64
	if err == nil {
		err = ddb.View(func(tx *bolt.Tx) error { dataSize = tx.Size(); return nil })
	}
	if cerr := ddb.Close(); err == nil {
		err = cerr
	}
	// bbolt grows a file ahead of its data; nothing lives past the data's
	// end, so the copy gives that space back.
	if err == nil {
		err = truncateSync(tmpName, dataSize)
	}
	if err == nil {
		err = os.Rename(tmpName, dst)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return 0, fmt.Errorf("compact store %s into %s: %w", s.path, dst, err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, fmt.Errorf("compact store %s: %w", s.path, err)
	}
	return fi.Size(), nil
}

// truncateSync cuts the file at path to size and syncs it.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// compactInto runs bbolt's compaction, which reads the store in the calling
// goroutine; faults on a damaged file become ErrCorrupt.
func (s *Store) compactInto(dst *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard(&err)
	return bolt.Compact(dst, s.db, compactTxSize)
}

// maxCheckProblems caps the problems Check reports from its own walk.
const maxCheckProblems = 100

// Check verifies the store and returns every problem found, each wrapping
// ErrCorrupt; nil means healthy. It checks that the file is as long as its
// data, the schema version and meta values, that every value in every bucket
// decodes and sits under the key it should, and then runs bbolt's own
// consistency check (page references, freelist, key order). bbolt's check
// runs in a write transaction that is rolled back, because it reads the
// freelist that a concurrent writer would change: writes wait for it.
func (s *Store) Check() []error {
	if err := s.usable(false); err != nil {
		return []error{err}
	}
	var problems []error
	more := 0
	add := func(format string, args ...any) {
		if len(problems) >= maxCheckProblems {
			more++
			return
		}
		problems = append(problems, fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...))
	}
	err := s.view(func(tx *bolt.Tx) error {
		if size := s.fileSize(); tx.Size() > size {
			add("the file is %d bytes but its data extends to %d bytes (truncated?)", size, tx.Size())
			return nil // walking on would fault
		}
		s.checkTx(tx, add)
		return nil
	})
	if err != nil {
		problems = append(problems, err)
	}
	if more > 0 {
		problems = append(problems, fmt.Errorf("%w: and %d more problems", ErrCorrupt, more))
	}
	if len(problems) > 0 {
		// Do not let bbolt's checker walk a file this broken: it runs in a
		// goroutine of its own, where a fault cannot be recovered.
		return problems
	}
	run := s.db.Update
	if s.opts.ReadOnly {
		run = s.db.View
	}
	errRollback := errors.New("rollback")
	err = func() (err error) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer s.guard(&err)
		return run(func(tx *bolt.Tx) error {
			for cerr := range tx.Check() {
				problems = append(problems, fmt.Errorf("%w: bbolt: %w", ErrCorrupt, cerr))
			}
			if tx.Writable() {
				return errRollback
			}
			return nil
		})
	}()
	if err != nil && !errors.Is(err, errRollback) {
		problems = append(problems, err)
	}
	return problems
}

// checkTx checks everything the store wrote, in tx.
func (s *Store) checkTx(tx *bolt.Tx, add func(string, ...any)) {
	mb := tx.Bucket(bucketMeta)
	if mb == nil {
		add("bucket meta is missing")
		return
	}
	if v := mb.Get(keySchema); len(v) != 8 {
		add("meta: no schema version")
	} else if sv := binary.BigEndian.Uint64(v); sv != s.schema {
		add("meta: schema version %d, this easgate writes %d", sv, s.schema)
	}
	if v := mb.Get(keySerial); len(v) != 8 {
		add("meta: no serial")
	}
	if v := mb.Get(keyMeta); v != nil {
		var m engine.Meta
		if err := json.Unmarshal(v, &m); err != nil {
			add("meta: %v", err)
		}
	}
	if v := mb.Get(keyHeldPlan); v != nil {
		var p engine.Plan
		if err := json.Unmarshal(v, &p); err != nil {
			add("held plan: %v", err)
		}
	}
	for _, name := range currentSchema.buckets[1:] {
		if tx.Bucket(name) == nil {
			add("bucket %s is missing", name)
		}
	}
	each := func(bucket []byte, fn func(k []byte, v string) error) {
		b := tx.Bucket(bucket)
		if b == nil {
			return
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				add("%s %q: unexpected nested bucket", bucket, k)
				continue
			}
			if err := fn(k, string(v)); err != nil {
				add("%s %q: %v", bucket, k, err)
			}
		}
	}
	wantKey := func(k []byte, want string) error {
		if string(k) != want {
			return fmt.Errorf("value belongs under key %q", want)
		}
		return nil
	}
	each(bucketRecords, func(k []byte, v string) error {
		var r engine.DeviceRecord
		if err := decodeRecord(v, &r); err != nil {
			return err
		}
		return wantKey(k, string(r.Key()))
	})
	each(bucketMDM, func(k []byte, v string) error {
		var m engine.MDMDevice
		if err := decodeMDM(v, &m); err != nil {
			return err
		}
		return wantKey(k, m.ID)
	})
	each(bucketMailboxes, func(k []byte, v string) error {
		var m engine.Mailbox
		if err := decodeMailbox(v, &m); err != nil {
			return err
		}
		return wantKey(k, strings.ToLower(m.UPN))
	})
	each(bucketLinks, func(k []byte, v string) error {
		var l engine.Link
		if err := decodeLink(v, &l); err != nil {
			return err
		}
		return wantKey(k, string(l.Device))
	})
	each(bucketOwned, func(k []byte, v string) error {
		var o engine.OwnedEntry
		if err := decodeOwned(v, &o); err != nil {
			return err
		}
		return wantKey(k, string(o.Key()))
	})
	each(bucketRuns, func(k []byte, v string) error {
		var r engine.Run
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return err
		}
		return wantKey(k, string(runKey(runStart(&r), r.ID)))
	})
	var seqMax uint64
	if jb := tx.Bucket(bucketJournal); jb != nil {
		seqMax = jb.Sequence()
	}
	each(bucketJournal, func(k []byte, v string) error {
		if len(k) != 8 {
			return errors.New("key is not a sequence number")
		}
		seq := binary.BigEndian.Uint64(k)
		if seq > seqMax {
			return fmt.Errorf("sequence %d is beyond the bucket's sequence %d", seq, seqMax)
		}
		var e engine.JournalEntry
		return decodeJournal(v, seq, &e)
	})
}

// Stats describes the store file and its content.
type Stats struct {
	Path     string `json:"path"`
	FileSize int64  `json:"file_size"`
	// DataSize is how much of the file bbolt uses (its high-water mark); the
	// file grows ahead of it, in steps of up to 1 GiB.
	DataSize int64     `json:"data_size"`
	PageSize int       `json:"page_size"`
	Schema   uint64    `json:"schema"`
	Serial   uint64    `json:"serial"`
	Created  time.Time `json:"created"`
	ReadOnly bool      `json:"read_only"`
	// Keys per bucket.
	Records   int `json:"records"`
	MDM       int `json:"mdm"`
	Mailboxes int `json:"mailboxes"`
	Links     int `json:"links"`
	Owned     int `json:"owned"`
	Runs      int `json:"runs"`
	Journal   int `json:"journal"`
	// JournalFirst and JournalLast are the oldest and newest sequence
	// numbers the journal holds (0 when it is empty).
	JournalFirst uint64 `json:"journal_first"`
	JournalLast  uint64 `json:"journal_last"`
	// FreeBytes is space inside the file that bbolt will reuse; Compact
	// gives it back to the file system.
	FreeBytes int64 `json:"free_bytes"`
	// BytesWritten is how many bytes of pages this process's write
	// transactions have written since it opened the store (bbolt also
	// writes one meta page per commit); Commits how many committed.
	BytesWritten int64 `json:"bytes_written"`
	Commits      int64 `json:"commits"`
}

// Stats returns the file's size and how many keys each bucket holds. It
// walks every bucket's pages (about a second per few hundred MB).
func (s *Store) Stats() (Stats, error) {
	st := Stats{Path: s.path, ReadOnly: s.opts.ReadOnly, Schema: s.schema}
	err := s.view(func(tx *bolt.Tx) error {
		st.FileSize = s.fileSize()
		st.DataSize = tx.Size()
		st.PageSize = tx.DB().Info().PageSize
		var err error
		if st.Serial, err = s.readSerial(tx); err != nil {
			return err
		}
		if mb := tx.Bucket(bucketMeta); mb != nil {
			if v := mb.Get(keyCreated); v != nil {
				st.Created, _ = time.Parse(time.RFC3339, string(v))
			}
		}
		count := func(name []byte) int {
			if b := tx.Bucket(name); b != nil {
				return b.Stats().KeyN
			}
			return 0
		}
		st.Records = count(bucketRecords)
		st.MDM = count(bucketMDM)
		st.Mailboxes = count(bucketMailboxes)
		st.Links = count(bucketLinks)
		st.Owned = count(bucketOwned)
		st.Runs = count(bucketRuns)
		st.Journal = count(bucketJournal)
		if jb := tx.Bucket(bucketJournal); jb != nil {
			c := jb.Cursor()
			if k, _ := c.First(); len(k) == 8 {
				st.JournalFirst = binary.BigEndian.Uint64(k)
			}
			if k, _ := c.Last(); len(k) == 8 {
				st.JournalLast = binary.BigEndian.Uint64(k)
			}
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store stats: %w", err)
	}
	ds := s.db.Stats()
	st.FreeBytes = int64(ds.FreeAlloc)
	st.BytesWritten = ds.TxStats.GetPageAlloc()
	st.Commits = s.commits.Load()
	return st, nil
}
