package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"easgate/engine"
)

var _ engine.Store = (*Store)(nil)

// Defaults for Options.
const (
	DefaultLockTimeout       = time.Second
	DefaultMaxRuns           = 1000
	DefaultMaxJournalEntries = 400_000
)

// Options configure Open. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the store; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// ReadOnly opens the store with a shared lock: several read-only
	// openers may share it, a writer may not. Writing calls fail with
	// ErrReadOnly. A store that does not exist is not created.
	ReadOnly bool
	// MaxRuns is how many runs the history keeps; 0 means DefaultMaxRuns,
	// a negative value keeps every run.
	MaxRuns int
	// MaxJournalEntries is how many journal entries (by sequence number,
	// newest kept) the journal keeps; 0 means DefaultMaxJournalEntries, a
	// negative value sets no count limit.
	MaxJournalEntries int
	// MaxJournalAge, when positive, also drops journal entries older than
	// this. Both limits apply: an entry goes when it is outside either.
	MaxJournalAge time.Duration
	// MaxSize, when positive, is the largest the file may grow to; a
	// commit that needs more fails and changes nothing.
	MaxSize int64
	// Clock tells the time for journal age pruning, migration backups and
	// the owner file; nil means engine.SystemClock.
	Clock engine.Clock
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRuns == 0 {
		o.MaxRuns = DefaultMaxRuns
	}
	if o.MaxJournalEntries == 0 {
		o.MaxJournalEntries = DefaultMaxJournalEntries
	}
	if o.Clock == nil {
		o.Clock = engine.SystemClock{}
	}
	return o
}

// Log attribute keys.
const (
	attrPath     = "path"
	attrMode     = "mode"
	attrSchema   = "schema"
	attrFrom     = "from"
	attrTo       = "to"
	attrSerial   = "serial"
	attrSize     = "size"
	attrReadOnly = "read_only"
	attrDuration = "duration"
	attrBackup   = "backup"
	attrPID      = "pid"
	attrRuns     = "runs"
	attrJournal  = "journal"
	attrErr      = "err"
	attrStack    = "stack"
	attrName     = "name"
)

// Bucket names.
var (
	bucketMeta      = []byte("meta")
	bucketRecords   = []byte("records")
	bucketMDM       = []byte("mdm")
	bucketMailboxes = []byte("mailboxes")
	bucketLinks     = []byte("links")
	bucketOwned     = []byte("owned")
	bucketRuns      = []byte("runs")
	bucketJournal   = []byte("journal")
)

// Keys in the meta bucket.
var (
	keySchema   = []byte("schema")    // uint64, big-endian
	keySerial   = []byte("serial")    // uint64, big-endian
	keyMeta     = []byte("meta")      // engine.Meta, JSON
	keyHeldPlan = []byte("held_plan") // engine.Plan, JSON; absent when none is held
	// prefixOverride + DeviceKey holds an engine.Override, JSON: an admin's
	// allows and blocks by hand are few, so they live in meta.
	prefixOverride = []byte("override/")
	keyCreated     = []byte("created") // RFC 3339, when the store was created
)

// Fill percentages. bbolt splits a page when it is this full; its default
// 0.5 leaves a sorted bulk load half empty. Measured at 75,000 records:
// 0.9 made the data 102 MB and a 1% delta wrote 9.7 MB; 1.0 made it 90 MB
// and the delta wrote 10.8 MB (a replaced value that grew splits its full
// page). The space matters more: state buckets fill pages too. The journal
// and runs are append-only, where a full page is never split again.
const (
	fillState  = 1.0
	fillAppend = 1.0
)

// migration moves a store from schema from to from+1 inside one write
// transaction; the schema number is written in the same transaction.
type migration struct {
	from  uint64
	name  string
	apply func(tx *bolt.Tx) error
}

// schema describes a layout version: its buckets, and how to get to it.
type schema struct {
	version    uint64
	buckets    [][]byte
	migrations []migration
}

// currentSchema is the layout this build writes. Version 1 has nothing to
// migrate from; a later layout appends a migration from 1 and raises the
// version, and Open takes a backup before running it.
var currentSchema = schema{
	version: 1,
	buckets: [][]byte{bucketMeta, bucketRecords, bucketMDM, bucketMailboxes, bucketLinks,
		bucketOwned, bucketRuns, bucketJournal},
}

// Store is easgate's bbolt store. Its methods are safe for concurrent use;
// bbolt runs one write transaction at a time and any number of readers.
type Store struct {
	db     *bolt.DB
	file   *os.File // bbolt's data file, for its size
	path   string
	opts   Options
	log    *slog.Logger
	owner  owner // zero when read-only or when the owner file could not be written
	schema uint64
	closed atomic.Bool
	// commits counts committed write transactions, for Stats.
	commits atomic.Int64
	// stage is when and how a commit is staged (see stage.go).
	stage stageSize
}

// Open opens the store at path, creating it (mode 0600) unless opts.ReadOnly.
// If another process holds it, Open waits up to opts.LockTimeout and then
// fails with an *InUseError that wraps engine.ErrStoreInUse. A damaged file
// fails with ErrCorrupt, a newer layout with ErrNewerSchema; an older layout
// is migrated after a backup copy is written next to the file.
func Open(path string, opts Options) (*Store, error) {
	return open(path, opts, currentSchema)
}

func open(path string, opts Options, sc schema) (*Store, error) {
	opts = opts.withDefaults()
	log := opts.Logger.With(slog.String(attrPath, path))
	start := time.Now()

	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("open store %s: not a regular file", path)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
			log.Warn("store file is accessible by other users; it should be 0600",
				slog.String(attrMode, fmt.Sprintf("%#o", perm)))
		}
		if fi.Size() == 0 {
			// easgate never leaves an empty store behind: bbolt writes its
			// first pages on creation. An empty file is a store truncated to
			// nothing, and starting afresh on it would lose the history and
			// the record of easgate's own list entries without a word.
			return nil, corruptError(path, errors.New("the file is empty (truncated?); delete it only to start a new store"))
		}
	case errors.Is(err, fs.ErrNotExist) && !opts.ReadOnly:
	default:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	// With NoFreelistSync, a read-write open rebuilds the freelist by walking
	// every page in a goroutine of bbolt's own, where a fault on a truncated
	// or damaged file would kill the process. So a read-write open of an
	// existing file first opens it read-only and walks it here, where faults
	// are recovered (see guard).
	if fi != nil && fi.Size() > 0 && !opts.ReadOnly {
		pre, err := openBolt(path, opts, true)
		if err != nil {
			return nil, err
		}
		err = pre.preflight(true)
		pre.closeBolt()
		if err != nil {
			return nil, err
		}
	}

	s, err := openBolt(path, opts, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if err := s.preflight(false); err != nil {
			s.closeBolt()
			return nil, err
		}
	} else {
		host, _ := os.Hostname()
		o := owner{PID: os.Getpid(), Host: host, Since: opts.Clock.Now().UTC()}
		// Without the owner file the lock still protects the store; only a
		// second opener's error cannot name this process.
		switch stale, err := writeOwner(path, o); {
		case err != nil:
			log.Warn("cannot write the owner file; another opener will not learn this pid", slog.Any(attrErr, err))
		case stale:
			s.owner = o
			log.Info("replaced a stale owner file")
		default:
			s.owner = o
		}
	}
	if err := s.initSchema(sc); err != nil {
		_ = s.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		if err := s.dropStage(); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	// bbolt's freelist rebuild, inside a read-write open, read every page
	// of this mapping (the preflight walked a mapping of its own, now gone).
	_ = s.view(func(tx *bolt.Tx) error { releaseMapped(s.db, tx); return nil })
	serial, _ := s.serial()
	log.Info("store opened", slog.Uint64(attrSchema, s.schema), slog.Uint64(attrSerial, serial),
		slog.Int64(attrSize, s.fileSize()), slog.Bool(attrReadOnly, opts.ReadOnly),
		slog.Duration(attrDuration, time.Since(start)))
	return s, nil
}

// openBolt opens the bbolt file. Lock timeouts become *InUseError, format
// errors and panics ErrCorrupt.
//
// bbolt options, and why: FreelistMapType finds free page runs in constant
// time where the array type scans, which matters once pruning the journal
// has freed thousands of pages; NoFreelistSync does not write the freelist
// on every commit (the applier commits after every batch), at the price of
// rebuilding it from a page walk on a read-write open. Both are etcd's
// production settings. InitialMmapSize maps 1 GiB up front: when a write
// transaction outgrows the map, bbolt remaps and first copies every dirty
// node's keys and values to the heap, and doubling from 32 KiB to 256 MiB
// did that 13 times during a full first snapshot (a third of its time). A
// larger map is only address space on 64-bit Unix; on Windows bbolt would
// grow the file to it, so there it stays at bbolt's default.
func openBolt(path string, opts Options, readOnly bool) (s *Store, err error) {
	var file *os.File
	bo := &bolt.Options{
		Timeout:         opts.LockTimeout,
		ReadOnly:        readOnly,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
		InitialMmapSize: initialMmapSize(),
		MaxSize:         int(opts.MaxSize),
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err == nil && file == nil {
				file = f
			}
			return f, err
		},
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// bbolt panicked half-way through opening: release the lock by
			// closing its file (the mapping, if any, is lost to the process).
			if file != nil {
				_ = file.Close()
			}
			s, err = nil, corruptError(path, fmt.Errorf("bbolt panicked while opening: %v", r))
		}
	}()
	db, err := bolt.Open(path, 0o600, bo)
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, inUseError(path)
		case isIOError(err):
			return nil, fmt.Errorf("open store %s: %w", path, err)
		default:
			return nil, corruptError(path, err)
		}
	}
	return &Store{db: db, file: file, path: path, opts: opts, log: opts.Logger.With(slog.String(attrPath, path)), stage: defaultStage}, nil
}

// initialMmapSize is 1 GiB where mapping it costs nothing but address space.
func initialMmapSize() int {
	if runtime.GOOS == "windows" || strconv.IntSize < 64 {
		return 0
	}
	return 1 << 30
}

// isIOError tells an operating system error (permissions, a missing file, a
// full disk) from a complaint about the file's content.
func isIOError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// preflight checks that the file holds every page its meta page promises
// and, when walk is set, touches every page so that a damaged one fails
// here rather than in a goroutine of bbolt's.
func (s *Store) preflight(walk bool) error {
	return s.view(func(tx *bolt.Tx) error {
		if size := s.fileSize(); tx.Size() > size {
			return corruptError(s.path, fmt.Errorf("the file is %d bytes but its data extends to %d bytes (truncated?)", size, tx.Size()))
		}
		if !walk {
			return nil
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return touchBucket(b)
		})
	})
}

// touchBucket reads one byte of every value in b and its nested buckets.
func touchBucket(b *bolt.Bucket) error {
	var sink byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := touchBucket(nb); err != nil {
					return err
				}
			}
			continue
		}
		if len(v) > 0 {
			sink ^= v[len(v)-1]
		}
	}
	_ = sink
	return nil
}

// initSchema creates a new store's buckets, refuses a newer schema and
// migrates an older one.
func (s *Store) initSchema(sc schema) error {
	var version uint64
	var fresh bool
	err := s.view(func(tx *bolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		if mb == nil {
			n := 0
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
			if n == 0 {
				fresh = true
				return nil
			}
			return corruptError(s.path, errors.New("it has no meta bucket: not an easgate store"))
		}
		v := mb.Get(keySchema)
		if len(v) != 8 {
			return corruptError(s.path, errors.New("it has no schema version: not an easgate store"))
		}
		version = binary.BigEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return err
	}
	if fresh {
		if s.opts.ReadOnly {
			// A bbolt file nobody has written to yet: reads see an empty
			// store.
			s.schema = sc.version
			return nil
		}
		err := s.update(func(tx *bolt.Tx) error {
			for _, name := range sc.buckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			mb := tx.Bucket(bucketMeta)
			if err := mb.Put(keySchema, u64(sc.version)); err != nil {
				return err
			}
			if err := mb.Put(keySerial, u64(0)); err != nil {
				return err
			}
			return mb.Put(keyCreated, []byte(s.opts.Clock.Now().UTC().Format(time.RFC3339)))
		})
		if err != nil {
			return fmt.Errorf("initialise store %s: %w", s.path, err)
		}
		s.schema = sc.version
		return nil
	}
	switch {
	case version > sc.version:
		return fmt.Errorf("store %s has schema version %d but this easgate reads up to %d; run a newer easgate or restore a backup made by this version: %w",
			s.path, version, sc.version, ErrNewerSchema)
	case version < sc.version && s.opts.ReadOnly:
		return fmt.Errorf("store %s has schema version %d and this easgate needs %d; open it read-write once (easgate run or easgate sync) to migrate it: %w",
			s.path, version, sc.version, ErrNeedsMigration)
	case version < sc.version:
		if err := s.migrate(version, sc); err != nil {
			return err
		}
	}
	s.schema = sc.version
	return s.view(func(tx *bolt.Tx) error {
		for _, name := range sc.buckets {
			if tx.Bucket(name) == nil {
				return corruptError(s.path, fmt.Errorf("bucket %s is missing", name))
			}
		}
		return nil
	})
}

// migrate takes a backup next to the store, then runs each migration from
// version up to sc.version in its own transaction.
func (s *Store) migrate(version uint64, sc schema) error {
	backup := fmt.Sprintf("%s.schema%d-%s.bak", s.path, version, s.opts.Clock.Now().UTC().Format("20060102T150405Z"))
	if _, err := s.BackupFile(backup); err != nil {
		return fmt.Errorf("back up store %s before migrating it: %w", s.path, err)
	}
	s.log.Info("backed up the store before migrating it", slog.String(attrBackup, backup),
		slog.Uint64(attrFrom, version), slog.Uint64(attrTo, sc.version))
	for v := version; v < sc.version; v++ {
		var m *migration
		for i := range sc.migrations {
			if sc.migrations[i].from == v {
				m = &sc.migrations[i]
			}
		}
		if m == nil {
			return fmt.Errorf("migrate store %s: no migration from schema %d", s.path, v)
		}
		err := s.update(func(tx *bolt.Tx) error {
			if err := m.apply(tx); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keySchema, u64(v+1))
		})
		if err != nil {
			return fmt.Errorf("migrate store %s from schema %d (%s); the backup is %s: %w", s.path, v, m.name, backup, err)
		}
		s.log.Info("migrated store schema", slog.Uint64(attrFrom, v), slog.Uint64(attrTo, v+1), slog.String(attrName, m.name))
	}
	return nil
}

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.opts.ReadOnly }

// Close waits for running transactions, closes the file and removes the
// owner file. Calls after Close fail with ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Remove the owner file while the lock is still held, so that it never
	// names a process that no longer holds the store.
	var oerr error
	if s.owner.PID != 0 {
		oerr = removeOwner(s.path, s.owner)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	if oerr != nil {
		return fmt.Errorf("close store %s: %w", s.path, oerr)
	}
	s.log.Debug("store closed")
	return nil
}

// closeBolt closes the bbolt handle of a store that never finished opening.
func (s *Store) closeBolt() {
	s.closed.Store(true)
	_ = s.db.Close()
}

// fileSize is the data file's size, or 0 if it cannot be read.
func (s *Store) fileSize() int64 {
	if s.file == nil {
		return 0
	}
	fi, err := s.file.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// usable reports ErrClosed, or ErrReadOnly for a write.
func (s *Store) usable(write bool) error {
	if s.closed.Load() {
		return fmt.Errorf("store %s: %w", s.path, ErrClosed)
	}
	if write && s.opts.ReadOnly {
		return fmt.Errorf("store %s: %w", s.path, ErrReadOnly)
	}
	return nil
}

// view runs fn in a read transaction, turning bbolt panics and memory faults
// on a damaged file into ErrCorrupt.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	if err := s.usable(false); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard(&err)
	return s.db.View(fn)
}

// update runs fn in a write transaction; an error or a panic rolls it back.
func (s *Store) update(fn func(tx *bolt.Tx) error) (err error) {
	if err := s.usable(true); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.guard(&err)
	if err := s.db.Update(fn); err != nil {
		return err
	}
	s.commits.Add(1)
	return nil
}

// guard, deferred, turns a panic into ErrCorrupt. bbolt panics on pages it
// cannot make sense of, and a page beyond the end of a truncated file faults
// (which SetPanicOnFault makes a panic).
func (s *Store) guard(err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.log.Error("store access panicked", slog.Any(attrErr, r), slog.String(attrStack, string(debug.Stack())))
	*err = corruptError(s.path, fmt.Errorf("bbolt panicked: %v", r))
}

// serial reads the stored serial.
func (s *Store) serial() (uint64, error) {
	var serial uint64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		serial, err = s.readSerial(tx)
		return err
	})
	return serial, err
}

// readSerial reads the serial in tx; a store without a meta bucket (never
// written) is at 0.
func (s *Store) readSerial(tx *bolt.Tx) (uint64, error) {
	mb := tx.Bucket(bucketMeta)
	if mb == nil {
		return 0, nil
	}
	v := mb.Get(keySerial)
	if len(v) != 8 {
		return 0, corruptError(s.path, fmt.Errorf("the serial is %d bytes, want 8", len(v)))
	}
	return binary.BigEndian.Uint64(v), nil
}

// u64 encodes v big-endian, so that keys sort numerically.
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

// syncDir makes a rename in dir durable. Windows cannot sync a directory;
// there the error is ignored.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	cerr := d.Close()
	if runtime.GOOS == "windows" {
		return nil
	}
	if err == nil {
		err = cerr
	}
	return err
}
