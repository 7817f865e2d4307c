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
	var cred *unix.Ucred
	err := onSocket(c, func(fd int) (err error) {
		if cred, err = unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil {
			return fmt.Errorf("SO_PEERCRED: %w", err)
		}
		return nil
	})
	if err != nil {
		return creds{}, err
	}
	return creds{uid: cred.Uid, gid: cred.Gid, pid: cred.Pid}, nil
}
