package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// A staged commit fills an empty bucket in bounded transactions.
//
// The first snapshot of a large organisation puts every device record,
// Intune record and mailbox into empty buckets: at 100,000 mailboxes some
// 400,000 entries and a 250 MB file. In one bbolt transaction all of it is
// in memory at once when the transaction commits: every encoded value,
// bbolt's node for every page, and a buffer for every page it writes. That
// came on top of the run's own state and made the commit the largest
// resident set of a first sync.
//
// So when a commit puts at least stageSize.min entries into a bucket that
// is empty, those entries are written in transactions of stageSize.batch
// entries into a bucket of the same name inside bucketStage. The
// transaction that then moves the serial also deletes the empty bucket,
// moves the filled one into its place (bbolt re-parents a bucket by its
// root page, without copying it) and drops bucketStage, together with the
// commit's other writes. Until that transaction, the store's state is the
// old one: a run that fails or a process that dies half-way leaves only
// bucketStage behind, which the next staged commit and every read-write
// Open remove. Each staging transaction is synced like any other, so a
// power cut cannot leave a meta page that points at pages never written.
//
// Only empty buckets are staged: filling one needs no copy of entries it
// already holds. A later large change (a policy edit that moves every
// decision) is a single transaction as before; its delta is the changed
// entries, not the file.
var bucketStage = []byte("stage")

// stageSize says when a commit is staged and how many entries each staging
// transaction writes. Tests make them small.
type stageSize struct{ min, batch int }

// defaultStage stages 20,000 entries or more, in transactions of 20,000:
// about 9 MB of encoded device records each (450 bytes a record), and 20
// transactions for the first snapshot of 100,000 mailboxes.
var defaultStage = stageSize{min: 20000, batch: 20000}

// stageBucket is a bucket a commit can fill in stages: how many entries c
// puts into it (0 when c also deletes from it), how to take those puts out
// of c, and how to stage them.
type stageBucket struct {
	name  []byte
	puts  func(c *engine.Commit) int
	take  func(c *engine.Commit)
	stage func(ctx context.Context, s *Store, c *engine.Commit) error
}

var stageBuckets = []stageBucket{
	{
		name: bucketRecords,
		puts: func(c *engine.Commit) int { return putsOnly(c.PutRecords.Len(), len(c.DeleteRecords)) },
		take: func(c *engine.Commit) { c.PutRecords = engine.Puts[engine.DeviceKey, engine.DeviceRecord]{} },
		stage: func(ctx context.Context, s *Store, c *engine.Commit) error {
			return stagePuts(ctx, s, bucketRecords, &c.PutRecords, recordKey, appendRecord)
		},
	},
	{
		name: bucketMDM,
		puts: func(c *engine.Commit) int { return putsOnly(c.PutMDM.Len(), len(c.DeleteMDM)) },
		// Staged, the bucket was empty: replacing its contents is putting them.
		take: func(c *engine.Commit) { c.PutMDM, c.ReplaceMDM = engine.Puts[string, engine.MDMDevice]{}, false },
		stage: func(ctx context.Context, s *Store, c *engine.Commit) error {
			return stagePuts(ctx, s, bucketMDM, &c.PutMDM, mdmKey, appendMDM)
		},
	},
	{
		name: bucketMailboxes,
		puts: func(c *engine.Commit) int { return putsOnly(c.PutMailboxes.Len(), len(c.DeleteMailbox)) },
		take: func(c *engine.Commit) { c.PutMailboxes = engine.Puts[string, engine.Mailbox]{} },
		stage: func(ctx context.Context, s *Store, c *engine.Commit) error {
			return stagePuts(ctx, s, bucketMailboxes, &c.PutMailboxes, mailboxKey, appendMailbox)
		},
	},
}

func putsOnly(puts, deletes int) int {
	if deletes > 0 {
		return 0
	}
	return puts
}

// stageable returns the buckets c fills from empty with enough entries to
// be staged. It fails with a stale-serial error as Commit would.
func (s *Store) stageable(c *engine.Commit) ([]*stageBucket, error) {
	var want []*stageBucket
	for i := range stageBuckets {
		if stageBuckets[i].puts(c) >= s.stage.min {
			want = append(want, &stageBuckets[i])
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	var staged []*stageBucket
	err := s.view(func(tx *bolt.Tx) error {
		cur, err := s.readSerial(tx)
		if err != nil {
			return err
		}
		if cur != c.Expect {
			return staleSerial(s.path, c.Expect, cur)
		}
		for _, sb := range want {
			if b := tx.Bucket(sb.name); b != nil && isEmpty(b) {
				staged = append(staged, sb)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, engine.ErrStaleSerial) {
			return nil, err
		}
		return nil, fmt.Errorf("commit to store %s: %w", s.path, err)
	}
	return staged, nil
}

func isEmpty(b *bolt.Bucket) bool {
	k, _ := b.Cursor().First()
	return k == nil
}

// commitStaged commits c, writing the puts of the staged buckets first in
// transactions of their own (see bucketStage).
func (s *Store) commitStaged(ctx context.Context, c *engine.Commit, staged []*stageBucket) (serial uint64, err error) {
	rest := *c
	names := make([][]byte, len(staged))
	for i, sb := range staged {
		sb.take(&rest)
		names[i] = sb.name
	}
	p, err := prepareCommit(&rest)
	if err != nil {
		return 0, fmt.Errorf("commit to store %s: %w", s.path, err)
	}
	p.state = true
	if err := s.newStage(names); err != nil {
		return 0, fmt.Errorf("commit to store %s: %w", s.path, err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		if derr := s.dropStage(); derr != nil {
			s.log.Warn("cannot remove the staged entries of a failed commit; the next commit or open removes them", slog.Any(attrErr, derr))
		}
	}()
	for _, sb := range staged {
		if err := sb.stage(ctx, s, c); err != nil {
			return 0, fmt.Errorf("commit to store %s: stage %s: %w", s.path, sb.name, err)
		}
	}
	var pruned PruneResult
	err = s.update(func(tx *bolt.Tx) error {
		cur, err := s.readSerial(tx)
		if err != nil {
			return err
		}
		if cur != c.Expect {
			return staleSerial(s.path, c.Expect, cur)
		}
		st := tx.Bucket(bucketStage)
		if st == nil {
			return fmt.Errorf("%w: the staged entries are gone", ErrCorrupt)
		}
		for _, name := range names {
			if live := tx.Bucket(name); live != nil {
				if !isEmpty(live) {
					return fmt.Errorf("bucket %s was written to while its entries were staged", name)
				}
				if err := tx.DeleteBucket(name); err != nil {
					return fmt.Errorf("replace bucket %s: %w", name, err)
				}
			}
			if err := tx.MoveBucket(name, st, nil); err != nil {
				return fmt.Errorf("move staged bucket %s into place: %w", name, err)
			}
		}
		if err := tx.DeleteBucket(bucketStage); err != nil {
			return fmt.Errorf("drop the stage: %w", err)
		}
		serial, pruned, err = s.commitTx(tx, c.Expect, p)
		return err
	})
	// A final transaction that failed rolled back: the stage is still
	// there to drop.
	done = err == nil
	return s.committed(serial, pruned, err)
}

// newStage replaces bucketStage with one holding an empty bucket for each
// of names.
func (s *Store) newStage(names [][]byte) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketStage) != nil {
			if err := tx.DeleteBucket(bucketStage); err != nil {
				return fmt.Errorf("drop an old stage: %w", err)
			}
		}
		st, err := tx.CreateBucket(bucketStage)
		if err != nil {
			return fmt.Errorf("create the stage: %w", err)
		}
		for _, name := range names {
			if _, err := st.CreateBucket(name); err != nil {
				return fmt.Errorf("create the stage for %s: %w", name, err)
			}
		}
		return nil
	})
}

// dropStage removes what a staged commit that did not finish left behind.
func (s *Store) dropStage() error {
	var found bool
	if err := s.view(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketStage) != nil
		return nil
	}); err != nil || !found {
		return err
	}
	err := s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketStage) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketStage)
	})
	if err != nil {
		return fmt.Errorf("store %s: remove the entries of an unfinished commit: %w", s.path, err)
	}
	s.log.Info("removed the entries of a commit that did not finish; the state is the one committed before it")
	return nil
}

// stagePuts writes puts into the staged bucket name, in transactions of
// s.stage.batch entries, each sorted by key.
func stagePuts[K comparable, T any](ctx context.Context, s *Store, name []byte, puts *engine.Puts[K, T], appendKey, appendVal func([]byte, *T) []byte) error {
	left := puts.Len()
	e := pairEncoder[T]{bucket: name, appendKey: appendKey, appendVal: appendVal}
	flush := func() error {
		if len(e.out) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := e.sorted()
		err := s.update(func(tx *bolt.Tx) error {
			st := tx.Bucket(bucketStage)
			if st == nil {
				return fmt.Errorf("%w: the stage is gone", ErrCorrupt)
			}
			b := st.Bucket(name)
			if b == nil {
				return fmt.Errorf("%w: the stage for %s is gone", ErrCorrupt, name)
			}
			b.FillPercent = fillState
			for _, kv := range batch {
				if err := b.Put(kv.k, kv.v); err != nil {
					return fmt.Errorf("put %s %q: %w", name, kv.k, err)
				}
			}
			return nil
		})
		// bbolt holds the pairs only until its transaction ends: the next
		// batch encodes into buffers of its own and these become garbage.
		e.out, e.buf = nil, nil
		return err
	}
	var err error
	for item := range puts.All {
		if e.out == nil {
			e.out = make([]kv, 0, min(s.stage.batch, left))
		}
		if err = e.add(item, min(s.stage.batch-len(e.out), left)); err != nil {
			break
		}
		left--
		if len(e.out) >= s.stage.batch {
			if err = flush(); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	return flush()
}
