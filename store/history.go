package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// runStart is the run's start time as the first part of its key: Unix
// nanoseconds, 0 for a zero or pre-1970 time.
func runStart(r *engine.Run) int64 {
	if r.Started.IsZero() || r.Started.Unix() < 0 {
		return 0
	}
	return r.Started.UnixNano()
}

// runKey is 8 bytes of big-endian start time followed by the run ID, so that
// keys sort chronologically and stay unique.
func runKey(start int64, id string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(start))
	return append(k, id...)
}

// putRun inserts or replaces the run with the ID: a run saved again under a
// different start time loses its old key.
func putRun(tx *bolt.Tx, start int64, id string, val []byte) error {
	b := tx.Bucket(bucketRuns)
	if b == nil {
		return fmt.Errorf("%w: bucket %s is missing", ErrCorrupt, bucketRuns)
	}
	b.FillPercent = fillState
	key := runKey(start, id)
	if b.Get(key) == nil {
		// Runs are few (MaxRuns); finding an older key by its ID suffix
		// reads keys only.
		var old []byte
		c := b.Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			if len(k) == 8+len(id) && string(k[8:]) == id {
				old = bytes.Clone(k)
				break
			}
		}
		if old != nil {
			if err := b.Delete(old); err != nil {
				return fmt.Errorf("delete old record of run %s: %w", id, err)
			}
		}
	}
	if err := b.Put(key, val); err != nil {
		return fmt.Errorf("save run %s: %w", id, err)
	}
	return nil
}

// SaveRun inserts or replaces a run record (by ID) and trims the history to
// MaxRuns. It does not move the serial.
func (s *Store) SaveRun(ctx context.Context, r *engine.Run) error {
	if err := s.usable(true); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	if r == nil || r.ID == "" {
		return errors.New("save run: the run has no id")
	}
	val, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("save run %s: encode: %w", r.ID, err)
	}
	var pruned int
	err = s.update(func(tx *bolt.Tx) error {
		if err := putRun(tx, runStart(r), r.ID, val); err != nil {
			return err
		}
		pruned, err = pruneRuns(tx, s.opts.MaxRuns)
		return err
	})
	if err != nil {
		return fmt.Errorf("save run %s in store %s: %w", r.ID, s.path, err)
	}
	if pruned > 0 {
		s.log.Info("pruned history", slog.Int(attrRuns, pruned), slog.Int(attrJournal, 0))
	}
	return nil
}

// Runs returns up to limit runs, newest first; limit ≤ 0 returns all.
func (s *Store) Runs(ctx context.Context, limit int) ([]engine.Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var runs []engine.Run
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if limit > 0 && len(runs) >= limit {
				break
			}
			var r engine.Run
			if err := json.Unmarshal(v, &r); err != nil {
				return corruptError(s.path, fmt.Errorf("run %q: %w", k, err))
			}
			runs = append(runs, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// pruneRuns deletes all but the newest max runs; max < 0 keeps all.
func pruneRuns(tx *bolt.Tx, max int) (int, error) {
	b := tx.Bucket(bucketRuns)
	if b == nil || max < 0 {
		return 0, nil
	}
	c := b.Cursor()
	k, _ := c.Last()
	for i := 0; i < max && k != nil; i++ {
		k, _ = c.Prev()
	}
	var old [][]byte
	for ; k != nil; k, _ = c.Prev() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("prune run %q: %w", k, err)
		}
	}
	return len(old), nil
}

// PruneResult counts what a prune deleted.
type PruneResult struct {
	Runs    int `json:"runs"`
	Journal int `json:"journal"`
}

// Prune applies the retention limits now; Commit does the same after every
// write.
func (s *Store) Prune(ctx context.Context) (PruneResult, error) {
	var res PruneResult
	if err := s.usable(true); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("prune store: %w", err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		res, err = s.prune(tx)
		return err
	})
	if err != nil {
		return PruneResult{}, fmt.Errorf("prune store %s: %w", s.path, err)
	}
	if res.Runs > 0 || res.Journal > 0 {
		s.log.Info("pruned history", slog.Int(attrRuns, res.Runs), slog.Int(attrJournal, res.Journal))
	}
	return res, nil
}

// prune applies both retention limits in tx.
func (s *Store) prune(tx *bolt.Tx) (PruneResult, error) {
	var res PruneResult
	var err error
	if res.Runs, err = pruneRuns(tx, s.opts.MaxRuns); err != nil {
		return res, err
	}
	var cutoff time.Time
	if s.opts.MaxJournalAge > 0 {
		cutoff = s.opts.Clock.Now().Add(-s.opts.MaxJournalAge)
	}
	res.Journal, err = pruneJournal(tx, s.opts.MaxJournalEntries, cutoff)
	return res, err
}

// pruneJournal deletes entries from the oldest while their sequence number is
// not among the newest max (max < 0: no count limit) or their time is before
// cutoff (zero: no age limit). It stops at the first entry it keeps, so an
// entry is kept if any older one is: sequence order is time order except
// when the clock stepped back.
func pruneJournal(tx *bolt.Tx, max int, cutoff time.Time) (int, error) {
	b := tx.Bucket(bucketJournal)
	if b == nil {
		return 0, nil
	}
	c := b.Cursor()
	lastK, _ := c.Last()
	if lastK == nil {
		return 0, nil
	}
	if len(lastK) != 8 {
		return 0, fmt.Errorf("%w: journal key %x is not a sequence number", ErrCorrupt, lastK)
	}
	last := binary.BigEndian.Uint64(lastK)
	keepFrom := uint64(0)
	if max >= 0 && last >= uint64(max) {
		keepFrom = last - uint64(max) + 1
	}
	var old []uint64
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return 0, fmt.Errorf("%w: journal key %x is not a sequence number", ErrCorrupt, k)
		}
		seq := binary.BigEndian.Uint64(k)
		if seq >= keepFrom {
			if cutoff.IsZero() {
				break
			}
			var e engine.JournalEntry
			if err := decodeJournal(string(v), seq, &e); err != nil || !e.Time.Before(cutoff) {
				break
			}
		}
		old = append(old, seq)
	}
	for _, seq := range old {
		if err := b.Delete(u64(seq)); err != nil {
			return 0, fmt.Errorf("prune journal entry %d: %w", seq, err)
		}
	}
	return len(old), nil
}

// Journal returns the entries q selects, oldest first. FromSeq and ToSeq
// bound a range of sequence numbers that is read by seeking, never by
// scanning the whole journal; RunID and Device filter within it (the filter
// reads only the start of each value). Limit keeps the newest Limit entries
// of the selection, read from the end of the range backwards.
func (s *Store) Journal(ctx context.Context, q engine.JournalQuery) ([]engine.JournalEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	from, to := max(q.FromSeq, 1), q.ToSeq
	if to == 0 {
		to = math.MaxUint64
	}
	out := []engine.JournalEntry{}
	if from > to {
		return out, nil
	}
	device := strings.ToLower(string(q.Device))
	deviceBytes := []byte(device)
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketJournal)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		take := func(seq uint64, v []byte) error {
			if q.RunID != "" || device != "" {
				run, dev, mailbox, deviceID, ok := journalHead(v)
				if ok && q.RunID != "" && string(run) != q.RunID {
					return nil
				}
				if ok && device != "" && !matchesDevice(dev, mailbox, deviceID, deviceBytes) {
					return nil
				}
			}
			var e engine.JournalEntry
			if err := decodeJournal(string(v), seq, &e); err != nil {
				return corruptError(s.path, fmt.Errorf("journal entry %d: %w", seq, err))
			}
			if device != "" && !entryOfDevice(&e, device) {
				return nil
			}
			out = append(out, e)
			return nil
		}
		if q.Limit <= 0 {
			for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
				seq, err := s.seqOf(k)
				if err != nil {
					return err
				}
				if seq > to {
					break
				}
				if err := take(seq, v); err != nil {
					return err
				}
			}
			return nil
		}
		k, v := c.Seek(u64(to))
		if k == nil {
			k, v = c.Last()
		} else if seq, err := s.seqOf(k); err != nil {
			return err
		} else if seq > to {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < q.Limit; k, v = c.Prev() {
			seq, err := s.seqOf(k)
			if err != nil {
				return err
			}
			if seq < from {
				break
			}
			if err := take(seq, v); err != nil {
				return err
			}
		}
		slices.Reverse(out)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	return out, nil
}

// seqOf reads a journal key.
func (s *Store) seqOf(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, corruptError(s.path, fmt.Errorf("journal key %x is not a sequence number", k))
	}
	return binary.BigEndian.Uint64(k), nil
}

// entryOfDevice reports whether the entry concerns the device: by its Device
// field, or, when that is empty, by its change's mailbox and device ID.
func entryOfDevice(e *engine.JournalEntry, device string) bool {
	if e.Device != "" {
		return strings.EqualFold(string(e.Device), device)
	}
	return e.Change != nil && string(engine.KeyOf(e.Change.Mailbox, e.Change.DeviceID)) == device
}
