//go:build darwin || freebsd

package control

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCredentials reads LOCAL_PEERCRED: the uid and groups of the process
// that connected.
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
		x    *unix.Xucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		x, gerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return creds{}, err
	}
	if gerr != nil {
		return creds{}, fmt.Errorf("LOCAL_PEERCRED: %w", gerr)
	}
	cr := creds{uid: x.Uid}
	for i := 0; i < int(x.Ngroups) && i < len(x.Groups); i++ {
		cr.groups = append(cr.groups, x.Groups[i])
	}
	if len(cr.groups) > 0 {
		cr.gid = cr.groups[0]
	}
	return cr, nil
}
