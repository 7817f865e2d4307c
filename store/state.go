package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// kv is a key and its value. Inside a transaction both may alias bbolt's
// memory map, which is read-only and valid only until the transaction ends.
type kv struct{ k, v []byte }

// pairs are a bucket's pairs in key order, in chunks: a slice of 150,000
// pairs grown by appending would be copied over and over (large slices grow
// by a quarter), some five times its size in garbage.
type pairs struct {
	chunks [][]kv
	n      int
}

// pairChunk is how many pairs one chunk holds.
const pairChunk = 8192

// collect returns the bucket's pairs in key order; none for a missing
// bucket.
func collect(b *bolt.Bucket) pairs {
	var p pairs
	if b == nil {
		return p
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			continue
		}
		if p.n%pairChunk == 0 {
			p.chunks = append(p.chunks, make([]kv, 0, pairChunk))
		}
		last := &p.chunks[len(p.chunks)-1]
		*last = append(*last, kv{k, v})
		p.n++
	}
	return p
}

// decodeMap decodes pairs into a map with read. It reads the pairs where
// they are, in the memory map; the key and every string of the value are
// made by a loadStrings, so nothing in the map aliases the pairs.
func decodeMap[K ~string, V any](bucket []byte, ps pairs, read func(*dec[[]byte], *V)) (map[K]V, error) {
	m := make(map[K]V, ps.n)
	ls := newLoadStrings()
	// One decoder for all values: read is a function value, so the
	// decoder escapes, and a kilobyte each would be half a gigabyte of
	// garbage at full scale.
	d := &dec[[]byte]{ls: ls}
	for _, chunk := range ps.chunks {
		for _, e := range chunk {
			k := ls.startValue(e.k)
			d.reset(e.v)
			var v V
			read(d, &v)
			if err := d.done(); err != nil {
				return nil, fmt.Errorf("%s %q: %w", bucket, e.k, err)
			}
			m[K(k)] = v
		}
	}
	return m, nil
}

// Load returns the saved state, with the MDM records counted, not read (see
// engine.State and MDMDevices). An empty store returns an empty State with
// serial 0. The maps are decoded in parallel, one goroutine per bucket.
func (s *Store) Load(ctx context.Context) (*engine.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	st := engine.NewState()
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if st.Serial, err = s.readSerial(tx); err != nil {
			return err
		}
		if err := loadMeta(tx, st); err != nil {
			return corruptError(s.path, err)
		}
		// Each bucket's decoder starts as soon as its pairs are collected:
		// collecting walks the memory map in this goroutine (the transaction
		// is not safe for concurrent use), the decoders only read the
		// collected slices.
		g := group{s: s}
		// If collecting panics on a damaged page, the decoders already
		// started must finish before the transaction (and its hold on the
		// memory map) ends.
		defer func() { _ = g.Wait() }()
		records := collect(tx.Bucket(bucketRecords))
		g.Go(func() (err error) {
			st.Records, err = decodeMap[engine.DeviceKey](bucketRecords, records, readRecord)
			return err
		})
		// MDM records stay in the store (see engine.State); MDMDevices
		// reads them.
		if b := tx.Bucket(bucketMDM); b != nil {
			st.MDMStored = b.Stats().KeyN
		}
		mailboxes := collect(tx.Bucket(bucketMailboxes))
		g.Go(func() (err error) {
			st.Mailboxes, err = decodeMap[string](bucketMailboxes, mailboxes, readMailbox)
			return err
		})
		owned := collect(tx.Bucket(bucketOwned))
		links := collect(tx.Bucket(bucketLinks))
		g.Go(func() (err error) {
			if st.Links, err = decodeMap[engine.DeviceKey](bucketLinks, links, readLink); err != nil {
				return err
			}
			st.Owned, err = decodeMap[engine.OwnedKey](bucketOwned, owned, readOwned)
			return err
		})
		err = g.Wait()
		// Every value is copied out: the pages need not stay resident.
		releaseMapped(s.db, tx)
		return s.damaged(err)
	})
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	return st, nil
}

// MDMDevice returns the saved MDM record with Intune device ID id, and
// whether there is one.
func (s *Store) MDMDevice(ctx context.Context, id string) (engine.MDMDevice, bool, error) {
	var (
		m     engine.MDMDevice
		found bool
	)
	if err := ctx.Err(); err != nil {
		return m, false, fmt.Errorf("read MDM record %s: %w", id, err)
	}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMDM)
		if b == nil || id == "" {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		// One value: a copy of it, its fields substrings of the copy,
		// costs less than a loadStrings and its arena chunk.
		if err := decodeMDM(string(v), &m); err != nil {
			return corruptError(s.path, fmt.Errorf("%s %q: %w", bucketMDM, id, err))
		}
		found = true
		return nil
	})
	if err != nil {
		return engine.MDMDevice{}, false, fmt.Errorf("read MDM record %s: %w", id, err)
	}
	return m, found, nil
}

// MDMDevices returns every saved MDM record, by Intune device ID. The
// records are decoded into one slice the map points into, as the engine's
// world holds them.
func (s *Store) MDMDevices(ctx context.Context) (map[string]*engine.MDMDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read MDM records: %w", err)
	}
	var mdm map[string]*engine.MDMDevice
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		mdm, err = decodeRefs(bucketMDM, collect(tx.Bucket(bucketMDM)), readMDM)
		releaseMapped(s.db, tx)
		return s.damaged(err)
	})
	if err != nil {
		return nil, fmt.Errorf("read MDM records: %w", err)
	}
	return mdm, nil
}

// decodeRefs decodes a bucket as decodeMap does, into one slice of values
// that the returned map points into.
func decodeRefs[V any](bucket []byte, ps pairs, read func(*dec[[]byte], *V)) (map[string]*V, error) {
	all := make([]V, ps.n)
	m := make(map[string]*V, ps.n)
	ls := newLoadStrings()
	d := &dec[[]byte]{ls: ls}
	i := 0
	for _, chunk := range ps.chunks {
		for _, e := range chunk {
			k := ls.startValue(e.k)
			d.reset(e.v)
			read(d, &all[i])
			if err := d.done(); err != nil {
				return nil, fmt.Errorf("%s %q: %w", bucket, e.k, err)
			}
			m[k] = &all[i]
			i++
		}
	}
	return m, nil
}

// damaged returns a value that would not decode as ErrCorrupt, naming the
// store; other errors pass as they are.
func (s *Store) damaged(err error) error {
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return corruptError(s.path, err)
	}
	return err
}

// loadMeta reads the serial-guarded small values: Meta and the held plan.
func loadMeta(tx *bolt.Tx, st *engine.State) error {
	mb := tx.Bucket(bucketMeta)
	if mb == nil {
		return nil
	}
	if v := mb.Get(keyMeta); v != nil {
		if err := json.Unmarshal(v, &st.Meta); err != nil {
			return fmt.Errorf("meta: %w", err)
		}
	}
	if v := mb.Get(keyHeldPlan); v != nil {
		st.HeldPlan = new(engine.Plan)
		if err := json.Unmarshal(v, st.HeldPlan); err != nil {
			return fmt.Errorf("held plan: %w", err)
		}
	}
	st.Overrides = map[engine.DeviceKey]engine.Override{}
	c := mb.Cursor()
	for k, v := c.Seek(prefixOverride); k != nil && bytes.HasPrefix(k, prefixOverride); k, v = c.Next() {
		var o engine.Override
		if err := json.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("override %s: %w", k[len(prefixOverride):], err)
		}
		st.Overrides[o.Device] = o
	}
	return nil
}

// encodeOverrides turns override puts and deletes into a write to meta.
func encodeOverrides(puts []engine.Override, dels []engine.DeviceKey) (write, error) {
	w := write{bucket: bucketMeta}
	for _, o := range puts {
		v, err := json.Marshal(o)
		if err != nil {
			return w, fmt.Errorf("encode override %s: %w", o.Device, err)
		}
		w.puts = append(w.puts, kv{k: overrideKey(o.Device), v: v})
	}
	for _, k := range dels {
		w.dels = append(w.dels, overrideKey(k))
	}
	return w, nil
}

func overrideKey(k engine.DeviceKey) []byte {
	return append(slices.Clone(prefixOverride), k...)
}

// group runs tasks in goroutines and reports the first error. Each
// goroutine reads the memory map, so each recovers from faults on its own.
type group struct {
	s    *Store
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// Go runs task in a new goroutine.
func (g *group) Go(task func() error) {
	g.wg.Go(func() {
		var err error
		defer func() {
			if err != nil {
				g.mu.Lock()
				g.errs = append(g.errs, err)
				g.mu.Unlock()
			}
		}()
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer g.s.guard(&err)
		err = task()
	})
}

// Wait waits for the tasks and returns the first error. It may be called
// more than once.
func (g *group) Wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) > 0 {
		return g.errs[0]
	}
	return nil
}

// write is the prepared change to one bucket: keys to delete, then pairs to
// put, each sorted by key. bbolt inserts into an in-memory node by shifting
// a slice, so sorted puts are what keep a 150,000-record commit linear.
type write struct {
	bucket []byte
	puts   []kv
	dels   [][]byte
	// replace, if set, computes the puts and dels in the transaction,
	// from what the bucket holds (see replaceAll).
	replace func(b *bolt.Bucket) ([]kv, [][]byte, error)
}

// apply performs the write in tx.
func (w *write) apply(tx *bolt.Tx) error {
	if len(w.puts) == 0 && len(w.dels) == 0 && w.replace == nil {
		return nil
	}
	b := tx.Bucket(w.bucket)
	if b == nil {
		return fmt.Errorf("%w: bucket %s is missing", ErrCorrupt, w.bucket)
	}
	b.FillPercent = fillState
	if w.replace != nil {
		var err error
		if w.puts, w.dels, err = w.replace(b); err != nil {
			return err
		}
	}
	for _, k := range w.dels {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete %s %q: %w", w.bucket, k, err)
		}
	}
	for _, e := range w.puts {
		if err := b.Put(e.k, e.v); err != nil {
			return fmt.Errorf("put %s %q: %w", w.bucket, e.k, err)
		}
	}
	return nil
}

// checkKey refuses keys bbolt cannot store.
func checkKey(bucket []byte, k []byte) error {
	switch {
	case len(k) == 0:
		return fmt.Errorf("%s: empty key", bucket)
	case len(k) > bolt.MaxKeySize:
		return fmt.Errorf("%s: key of %d bytes is too long", bucket, len(k))
	}
	return nil
}

// arenaChunk is the size of the buffers encodePuts encodes into. Values
// are sliced out of a chunk as they are written, so a chunk is never copied
// to grow; a value larger than what is left starts a new chunk.
const arenaChunk = 1 << 20

// encodePuts encodes items into chunked buffers and returns their pairs
// sorted by key; for equal keys the later item comes later, so it wins. The
// engine hands over items in key order already; then the sort is skipped.
func encodePuts[K comparable, T any](bucket []byte, puts *engine.Puts[K, T], appendKey, appendVal func([]byte, *T) []byte) ([]kv, error) {
	n := puts.Len()
	if n == 0 {
		return nil, nil
	}
	e := pairEncoder[T]{bucket: bucket, appendKey: appendKey, appendVal: appendVal, out: make([]kv, 0, n)}
	for item := range puts.All {
		if err := e.add(item, n-len(e.out)); err != nil {
			return nil, err
		}
	}
	return e.sorted(), nil
}

// replaceAll returns the writes that make b hold exactly the items of puts,
// which come in key order: the pairs whose encoding differs from what b
// holds, and the keys b holds that puts lacks. It walks b's keys alongside
// the items, encoding each item into one scratch buffer to compare it, so
// that a full inventory that changed little is neither held encoded nor
// rewritten: an unchanged entry's page stays as it is.
func replaceAll[K comparable, T any](b *bolt.Bucket, bucket []byte, puts *engine.Puts[K, T], appendKey, appendVal func([]byte, *T) []byte) ([]kv, [][]byte, error) {
	var (
		scratch, prev []byte
		dels          [][]byte
		changed       = pairEncoder[T]{bucket: bucket, appendKey: appendKey, appendVal: appendVal}
	)
	c := b.Cursor()
	k, v := c.First()
	n, i := puts.Len(), 0
	for item := range puts.All {
		i++
		scratch = appendKey(scratch[:0], item)
		ke := len(scratch)
		key := scratch[:ke]
		if err := checkKey(bucket, key); err != nil {
			return nil, nil, err
		}
		if prev != nil && bytes.Compare(key, prev) < 0 {
			return nil, nil, fmt.Errorf("%s: replacement %q comes after %q: its entries must be in key order", bucket, key, prev)
		}
		prev = append(prev[:0], key...)
		for ; k != nil && bytes.Compare(k, key) < 0; k, v = c.Next() {
			if v != nil { // not a nested bucket
				dels = append(dels, bytes.Clone(k))
			}
		}
		scratch = appendVal(scratch, item)
		if k != nil && bytes.Equal(k, scratch[:ke]) {
			same := v != nil && bytes.Equal(v, scratch[ke:])
			k, v = c.Next()
			if same {
				continue
			}
		}
		if err := changed.add(item, n-i+1); err != nil {
			return nil, nil, err
		}
	}
	for ; k != nil; k, v = c.Next() {
		if v != nil {
			dels = append(dels, bytes.Clone(k))
		}
	}
	return changed.sorted(), dels, nil
}

// pairEncoder encodes items into key-value pairs in chunked buffers.
type pairEncoder[T any] struct {
	bucket               []byte
	appendKey, appendVal func([]byte, *T) []byte
	buf                  []byte
	out                  []kv
}

// add encodes item; left is how many items are still to come, counting
// this one, which sizes a new buffer.
func (e *pairEncoder[T]) add(item *T, left int) error {
	if cap(e.buf)-len(e.buf) < 4096 {
		// A batch of a few hundred entries needs kilobytes, not a
		// whole chunk.
		e.buf = make([]byte, 0, min(arenaChunk, 512*left+4096))
	}
	ks := len(e.buf)
	e.buf = e.appendKey(e.buf, item)
	ke := len(e.buf)
	if err := checkKey(e.bucket, e.buf[ks:ke]); err != nil {
		return err
	}
	e.buf = e.appendVal(e.buf, item)
	e.out = append(e.out, kv{e.buf[ks:ke:ke], e.buf[ke:len(e.buf):len(e.buf)]})
	return nil
}

// sorted returns the pairs sorted by key; for equal keys the later item
// comes later, so it wins. The engine hands over items in key order
// already; then the sort is skipped.
func (e *pairEncoder[T]) sorted() []kv {
	cmp := func(a, b kv) int { return bytes.Compare(a.k, b.k) }
	if !slices.IsSortedFunc(e.out, cmp) {
		slices.SortStableFunc(e.out, cmp)
	}
	return e.out
}

// appendLower appends s lower-cased exactly as strings.ToLower would,
// without allocating for ASCII.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return append(b, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// Keys, appended. Each equals the engine's key function (DeviceRecord.Key,
// OwnedEntry.Key, the lower-cased UPN); TestKeysMatchTheEngine checks it.
func recordKey(b []byte, r *engine.DeviceRecord) []byte {
	b = appendLower(b, r.Mailbox)
	b = append(b, '/')
	return appendLower(b, r.DeviceID)
}

func ownedKey(b []byte, o *engine.OwnedEntry) []byte {
	b = appendLower(b, o.Mailbox)
	b = append(b, '|')
	b = append(b, o.List...)
	b = append(b, '|')
	return appendLower(b, o.DeviceID)
}

func mailboxKey(b []byte, m *engine.Mailbox) []byte { return appendLower(b, m.UPN) }
func mdmKey(b []byte, m *engine.MDMDevice) []byte   { return append(b, m.ID...) }
func linkKey(b []byte, l *engine.Link) []byte       { return append(b, l.Device...) }

// encodeDels returns the keys sorted.
func encodeDels[K ~string](keys []K) [][]byte {
	if len(keys) == 0 {
		return nil
	}
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if k != "" {
			out = append(out, []byte(k))
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// encodeJournalValues encodes entries into chunked buffers.
func encodeJournalValues(entries []engine.JournalEntry) [][]byte {
	if len(entries) == 0 {
		return nil
	}
	out := make([][]byte, len(entries))
	var buf []byte
	for i := range entries {
		if cap(buf)-len(buf) < 4096 {
			buf = make([]byte, 0, min(arenaChunk, 512*(len(entries)-i)))
		}
		start := len(buf)
		buf = appendJournal(buf, &entries[i])
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

func encodeOwned(owned *engine.Puts[engine.OwnedKey, engine.OwnedEntry], disowned []engine.OwnedKey) (write, error) {
	puts, err := encodePuts(bucketOwned, owned, ownedKey, appendOwned)
	return write{bucket: bucketOwned, puts: puts, dels: encodeDels(disowned)}, err
}

// preparedCommit is a Commit encoded outside the write transaction, so that
// the transaction holds bbolt's writer lock only for the writes.
type preparedCommit struct {
	writes   []write
	state    bool   // changes state: the serial moves
	meta     []byte // nil: unchanged
	setPlan  bool
	plan     []byte // nil with setPlan: clear
	run      []byte // JSON of c.Run, nil if none
	journal  [][]byte
	entries  []engine.JournalEntry
	runID    string
	runStart int64
}

func prepareCommit(c *engine.Commit) (*preparedCommit, error) {
	p := &preparedCommit{entries: c.Journal}
	var err error
	if c.Meta != nil {
		if p.meta, err = json.Marshal(c.Meta); err != nil {
			return nil, fmt.Errorf("encode meta: %w", err)
		}
	}
	if c.SetHeldPlan {
		p.setPlan = true
		if c.HeldPlan != nil {
			if p.plan, err = json.Marshal(c.HeldPlan); err != nil {
				return nil, fmt.Errorf("encode held plan: %w", err)
			}
		}
	}
	records, err := encodePuts(bucketRecords, &c.PutRecords, recordKey, appendRecord)
	if err != nil {
		return nil, err
	}
	mdm := write{bucket: bucketMDM, dels: encodeDels(c.DeleteMDM)}
	if c.ReplaceMDM {
		puts := c.PutMDM
		mdm.replace = func(b *bolt.Bucket) ([]kv, [][]byte, error) {
			return replaceAll(b, bucketMDM, &puts, mdmKey, appendMDM)
		}
	} else if mdm.puts, err = encodePuts(bucketMDM, &c.PutMDM, mdmKey, appendMDM); err != nil {
		return nil, err
	}
	mailboxes, err := encodePuts(bucketMailboxes, &c.PutMailboxes, mailboxKey, appendMailbox)
	if err != nil {
		return nil, err
	}
	links, err := encodePuts(bucketLinks, &c.PutLinks, linkKey, appendLink)
	if err != nil {
		return nil, err
	}
	owned, err := encodeOwned(&c.PutOwned, c.DeleteOwned)
	if err != nil {
		return nil, err
	}
	overrides, err := encodeOverrides(c.PutOverrides, c.DeleteOverrides)
	if err != nil {
		return nil, err
	}
	p.writes = []write{
		overrides,
		{bucket: bucketRecords, puts: records, dels: encodeDels(c.DeleteRecords)},
		mdm,
		{bucket: bucketMailboxes, puts: mailboxes, dels: encodeDels(lowerAll(c.DeleteMailbox))},
		{bucket: bucketLinks, puts: links, dels: encodeDels(c.DeleteLinks)},
		owned,
	}
	p.state = c.Meta != nil || c.SetHeldPlan || c.ReplaceMDM
	for _, w := range p.writes {
		p.state = p.state || len(w.puts) > 0 || len(w.dels) > 0
	}
	if c.Run != nil {
		if c.Run.ID == "" {
			return nil, errors.New("run has no id")
		}
		if p.run, err = json.Marshal(c.Run); err != nil {
			return nil, fmt.Errorf("encode run %s: %w", c.Run.ID, err)
		}
		p.runID, p.runStart = c.Run.ID, runStart(c.Run)
	}
	p.journal = encodeJournalValues(c.Journal)
	return p, nil
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// Commit applies c atomically if the stored serial is c.Expect, and returns
// the serial after it. A wrong serial fails with an error wrapping
// engine.ErrStaleSerial and writes nothing. The serial moves (by one) only
// when c changes state; a commit of only a run and journal entries leaves it.
// Deletes apply before puts, so a key both deleted and put ends up put. The
// run, if any, is saved and the journal appended in the same transaction,
// which then prunes old runs and journal entries (see Options).
func (s *Store) Commit(ctx context.Context, c *engine.Commit) (uint64, error) {
	if c == nil {
		return 0, fmt.Errorf("commit to store %s: nil commit", s.path)
	}
	if err := s.usable(true); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("commit to store %s: %w", s.path, err)
	}
	if c.Empty() {
		cur, err := s.serial()
		if err != nil {
			return 0, fmt.Errorf("commit to store %s: %w", s.path, err)
		}
		if cur != c.Expect {
			return 0, staleSerial(s.path, c.Expect, cur)
		}
		return cur, nil
	}
	staged, err := s.stageable(c)
	if err != nil {
		return 0, err
	}
	if len(staged) > 0 {
		return s.commitStaged(ctx, c, staged)
	}
	p, err := prepareCommit(c)
	if err != nil {
		return 0, fmt.Errorf("commit to store %s: %w", s.path, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("commit to store %s: %w", s.path, err)
	}
	var serial uint64
	var pruned PruneResult
	err = s.update(func(tx *bolt.Tx) error {
		var err error
		serial, pruned, err = s.commitTx(tx, c.Expect, p)
		return err
	})
	return s.committed(serial, pruned, err)
}

// commitTx writes a prepared commit in tx if the stored serial is expect,
// and returns the serial after it.
func (s *Store) commitTx(tx *bolt.Tx, expect uint64, p *preparedCommit) (uint64, PruneResult, error) {
	cur, err := s.readSerial(tx)
	if err != nil {
		return 0, PruneResult{}, err
	}
	if cur != expect {
		return 0, PruneResult{}, staleSerial(s.path, expect, cur)
	}
	mb := tx.Bucket(bucketMeta)
	for i := range p.writes {
		if err := p.writes[i].apply(tx); err != nil {
			return 0, PruneResult{}, err
		}
	}
	if p.meta != nil {
		if err := mb.Put(keyMeta, p.meta); err != nil {
			return 0, PruneResult{}, fmt.Errorf("put meta: %w", err)
		}
	}
	if p.setPlan {
		if p.plan == nil {
			err = mb.Delete(keyHeldPlan)
		} else {
			err = mb.Put(keyHeldPlan, p.plan)
		}
		if err != nil {
			return 0, PruneResult{}, fmt.Errorf("save held plan: %w", err)
		}
	}
	if p.state {
		cur++
		if err := mb.Put(keySerial, u64(cur)); err != nil {
			return 0, PruneResult{}, fmt.Errorf("put serial: %w", err)
		}
	}
	if p.run != nil {
		if err := putRun(tx, p.runStart, p.runID, p.run); err != nil {
			return 0, PruneResult{}, err
		}
	}
	if _, err := putJournal(tx, p.journal, p.entries); err != nil {
		return 0, PruneResult{}, err
	}
	// Pruning is housekeeping: a damaged old entry must not stop the
	// engine from saving state. Check and Prune report it.
	pruned, err := s.prune(tx)
	if err != nil {
		s.log.Warn("pruning the history failed", slog.Any(attrErr, err))
		pruned = PruneResult{}
	}
	return cur, pruned, nil
}

// committed finishes Commit: it wraps err and logs what pruning removed.
func (s *Store) committed(serial uint64, pruned PruneResult, err error) (uint64, error) {
	if err != nil {
		if errors.Is(err, engine.ErrStaleSerial) {
			return 0, err
		}
		return 0, fmt.Errorf("commit to store %s: %w", s.path, err)
	}
	if pruned.Runs > 0 || pruned.Journal > 0 {
		s.log.Info("pruned history", slog.Int(attrRuns, pruned.Runs), slog.Int(attrJournal, pruned.Journal))
	}
	return serial, nil
}

func staleSerial(path string, expect, cur uint64) error {
	return fmt.Errorf("commit to store %s: the commit expects serial %d but the store is at %d: %w",
		path, expect, cur, engine.ErrStaleSerial)
}

// RecordChanges appends the journal entries, assigning each the next
// sequence number, and puts and deletes owned list entries, all in one
// durable (fsynced) transaction. It returns the entries with Seq set. It
// does not move the serial: see the package documentation.
func (s *Store) RecordChanges(ctx context.Context, entries []engine.JournalEntry, owned []engine.OwnedEntry, disowned []engine.OwnedKey) ([]engine.JournalEntry, error) {
	if err := s.usable(true); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("record changes in store %s: %w", s.path, err)
	}
	if len(entries) == 0 && len(owned) == 0 && len(disowned) == 0 {
		return []engine.JournalEntry{}, nil
	}
	vals := encodeJournalValues(entries)
	w, err := encodeOwned(&engine.Puts[engine.OwnedKey, engine.OwnedEntry]{Items: owned}, disowned)
	if err != nil {
		return nil, fmt.Errorf("record changes in store %s: %w", s.path, err)
	}
	var out []engine.JournalEntry
	err = s.update(func(tx *bolt.Tx) error {
		var err error
		if out, err = putJournal(tx, vals, entries); err != nil {
			return err
		}
		return w.apply(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("record changes in store %s: %w", s.path, err)
	}
	return out, nil
}

// putJournal appends encoded entries under the journal bucket's next
// sequence numbers and returns copies of the entries with Seq set.
func putJournal(tx *bolt.Tx, vals [][]byte, entries []engine.JournalEntry) ([]engine.JournalEntry, error) {
	out := make([]engine.JournalEntry, len(entries))
	if len(entries) == 0 {
		return out, nil
	}
	b := tx.Bucket(bucketJournal)
	if b == nil {
		return nil, fmt.Errorf("%w: bucket %s is missing", ErrCorrupt, bucketJournal)
	}
	b.FillPercent = fillAppend
	for i := range entries {
		seq, err := b.NextSequence()
		if err != nil {
			return nil, fmt.Errorf("next journal sequence: %w", err)
		}
		if err := b.Put(u64(seq), vals[i]); err != nil {
			return nil, fmt.Errorf("append journal entry %d: %w", seq, err)
		}
		out[i] = entries[i]
		out[i].Seq = seq
	}
	return out, nil
}
