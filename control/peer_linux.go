//go:build linux

package control

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCredentials reads SO_PEERCRED: the uid, gid and pid of the process
// that connected, as the kernel recorded them at connect time.
func peerCredentials(c net.Conn) (creds, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return creds{}, fmt.Errorf("peer credentials of a %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return creds{}, err
	}
	var (
		cred *unix.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return creds{}, err
	}
	if gerr != nil {
		return creds{}, fmt.Errorf("SO_PEERCRED: %w", gerr)
	}
	return creds{uid: cred.Uid, gid: cred.Gid, pid: cred.Pid}, nil
}
