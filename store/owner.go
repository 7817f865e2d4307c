package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The owner file sits next to the store (<path>.owner) and names the process
// that holds the store's write lock. bbolt's lock (flock on Unix, LockFileEx
// on Windows) cannot say who holds it, and "store in use by pid N" is what an
// admin needs to read. The holder writes the file right after taking the lock
// and removes it on Close; a crash leaves it behind, so the file is only
// trusted while the lock is actually held by someone, and a new holder simply
// replaces it.

// ownerSuffix is appended to the store path to name the owner file.
const ownerSuffix = ".owner"

// owner is the owner file's content.
type owner struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

func ownerPath(path string) string { return path + ownerSuffix }

// writeOwner atomically replaces the owner file with o and reports whether a
// stale one was there.
func writeOwner(path string, o owner) (stale bool, err error) {
	op := ownerPath(path)
	if _, err := os.Stat(op); err == nil {
		stale = true
	}
	data, err := json.Marshal(o)
	if err != nil {
		return stale, fmt.Errorf("encode owner file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(op), filepath.Base(op)+".tmp*")
	if err != nil {
		return stale, fmt.Errorf("create owner file: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), op)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return stale, fmt.Errorf("write owner file %s: %w", op, werr)
	}
	return stale, nil
}

// readOwner reads the owner file.
func readOwner(path string) (owner, error) {
	var o owner
	data, err := os.ReadFile(ownerPath(path))
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return o, fmt.Errorf("owner file %s: %w", ownerPath(path), err)
	}
	if o.PID <= 0 {
		return o, fmt.Errorf("owner file %s names no pid", ownerPath(path))
	}
	return o, nil
}

// removeOwner removes the owner file if it still names o.
func removeOwner(path string, o owner) error {
	cur, err := readOwner(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil || cur.PID != o.PID || cur.Host != o.Host || !cur.Since.Equal(o.Since) {
		return nil // someone else's, or unreadable: leave it
	}
	if err := os.Remove(ownerPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove owner file: %w", err)
	}
	return nil
}

// ownerWait is how long inUseError waits for a holder that has just taken
// the lock to write its owner file.
const ownerWait = 250 * time.Millisecond

// inUseError describes who holds the store at path.
func inUseError(path string) *InUseError {
	e := &InUseError{Path: path}
	deadline := time.Now().Add(ownerWait)
	var o owner
	var err error
	for {
		o, err = readOwner(path)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		e.Note = "pid unknown: a read-only opener or another tool holds it"
		return e
	}
	host, _ := os.Hostname()
	if o.Host != "" && o.Host != host {
		e.PID, e.Host, e.Since = o.PID, o.Host, o.Since
		return e
	}
	if !processAlive(o.PID) {
		e.Note = fmt.Sprintf("pid unknown: the owner file names pid %d, which is not running; a read-only opener or another tool holds it", o.PID)
		return e
	}
	e.PID, e.Since = o.PID, o.Since
	return e
}
