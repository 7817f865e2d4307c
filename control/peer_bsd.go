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
	var x *unix.Xucred
	err := onSocket(c, func(fd int) (err error) {
		if x, err = unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED); err != nil {
			return fmt.Errorf("LOCAL_PEERCRED: %w", err)
		}
		return nil
	})
	if err != nil {
		return creds{}, err
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
