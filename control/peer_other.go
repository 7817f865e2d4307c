//go:build !linux && !darwin && !freebsd

package control

import "net"

// peerCredentials is not available here (Windows, other Unixes): the
// socket file's permissions (its ACL on Windows) are the only guard.
func peerCredentials(net.Conn) (creds, error) { return creds{}, errNoPeerCredentials }
