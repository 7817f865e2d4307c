package store

import (
	"errors"
	"fmt"
	"time"

	"easgate/engine"
)

// ErrCorrupt is returned when the store file is damaged: not a bbolt file,
// truncated, or holding a value that does not decode. The error text says
// to restore a backup or to rebuild the store with a full sync.
var ErrCorrupt = errors.New("store is corrupt")

// ErrNewerSchema is returned when the store was written by a newer easgate
// whose schema this build does not know.
var ErrNewerSchema = errors.New("store was written by a newer easgate")

// ErrNeedsMigration is returned when a read-only open finds an older schema;
// a read-write open migrates it (after taking a backup).
var ErrNeedsMigration = errors.New("store needs a schema migration")

// ErrReadOnly is returned by writing calls on a store opened read-only.
var ErrReadOnly = errors.New("store is open read-only")

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("store is closed")

// corruptHint is what an admin can do about a corrupt store.
const corruptHint = "restore it from a backup (easgate store backup) or move it aside and let a full sync rebuild it"

// corruptError wraps ErrCorrupt with the file, the cause and the hint.
func corruptError(path string, cause error) error {
	return &corrupt{path: path, cause: cause}
}

// corrupt is the error corruptError returns; it unwraps to ErrCorrupt and
// to the cause.
type corrupt struct {
	path  string
	cause error
}

// Error names the file, the cause and what to do.
func (e *corrupt) Error() string {
	return fmt.Sprintf("store %s is corrupt: %v; %s", e.path, e.cause, corruptHint)
}

// Unwrap makes errors.Is match ErrCorrupt and the cause.
func (e *corrupt) Unwrap() []error { return []error{ErrCorrupt, e.cause} }

// InUseError is returned by Open when another process holds the store's
// lock. It wraps engine.ErrStoreInUse. PID is 0 when the holder is unknown
// (a read-only opener, another tool, or an owner file that went stale).
type InUseError struct {
	Path  string
	PID   int
	Host  string    // set when the holder runs on another host (a shared file system)
	Since time.Time // when the holder opened the store, if known
	// Note says why the PID is unknown.
	Note string
}

// Error says which process holds the store.
func (e *InUseError) Error() string {
	switch {
	case e.PID == 0 && e.Note != "":
		return fmt.Sprintf("store %s in use by another process (%s)", e.Path, e.Note)
	case e.PID == 0:
		return fmt.Sprintf("store %s in use by another process", e.Path)
	case e.Host != "":
		return fmt.Sprintf("store %s in use by pid %d on host %s", e.Path, e.PID, e.Host)
	default:
		return fmt.Sprintf("store %s in use by pid %d", e.Path, e.PID)
	}
}

// Unwrap makes errors.Is(err, engine.ErrStoreInUse) true.
func (e *InUseError) Unwrap() error { return engine.ErrStoreInUse }
