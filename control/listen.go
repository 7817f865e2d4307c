package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a Unix socket address holds
// (sun_path is 108 bytes on Linux, 104 on the BSDs, with a NUL).
const maxSocketPath = 103

// staleDialTimeout is how long Listen waits for an existing socket to
// answer before calling it stale.
const staleDialTimeout = time.Second

// socketMode is the socket file's permission: the owner only, or the
// owner and the group.
func socketMode(group bool) fs.FileMode {
	if group {
		return 0o660
	}
	return 0o600
}

// listenUnix creates the socket at path with mode and group (gid < 0: the
// creator's), replacing a stale one. The socket is bound in a private
// directory beside path, given its permissions there and renamed into
// place, so it never exists at path with looser permissions than mode. It
// reports whether a stale socket was replaced.
func listenUnix(path string, mode fs.FileMode, gid int) (l *net.UnixListener, stale bool, err error) {
	if len(path) > maxSocketPath {
		return nil, false, fmt.Errorf("%w: %s is %d bytes long; a Unix socket path may have at most %d", ErrSocketPath, path, len(path), maxSocketPath)
	}
	stale, err = checkExisting(path)
	if err != nil {
		return nil, false, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".s")
	if err != nil {
		return nil, false, fmt.Errorf("create the control socket's directory: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) > maxSocketPath {
		return nil, false, fmt.Errorf("%w: %s is too long to bind the socket beside it", ErrSocketPath, path)
	}
	l, err = net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, false, fmt.Errorf("bind the control socket: %w", err)
	}
	// The file moves to path: Close removes it there, not the listener.
	l.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, bool, error) {
		_ = l.Close()
		return nil, false, err
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("give the control socket to group %d: %w", gid, err))
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("set the control socket's mode: %w", err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("move the control socket into place: %w", err))
	}
	return l, stale, nil
}

// checkExisting looks at what is at path: nothing, a stale socket (true),
// or something Listen must not replace (an error).
func checkExisting(path string) (stale bool, err error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return false, fmt.Errorf("%w: %s exists and is not a socket; remove it or change control.socket", ErrSocketPath, path)
	}
	c, err := net.DialTimeout("unix", path, staleDialTimeout)
	if err == nil {
		_ = c.Close()
		return false, fmt.Errorf("%w: %s", ErrSocketInUse, path)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true, nil
	}
	return false, fmt.Errorf("control socket %s exists and does not answer: %w", path, err)
}

// removeIfSame removes path if it is still the file fi describes, so that
// a service never removes a successor's socket.
func removeIfSame(path string, fi fs.FileInfo) error {
	cur, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi != nil && !os.SameFile(cur, fi) {
		return nil
	}
	return os.Remove(path)
}
