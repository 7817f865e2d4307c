package control

import (
	"errors"
	"fmt"
	"net"
	"os/user"
	"slices"
	"strconv"
)

// errNoPeerCredentials is returned by peerCredentials on a platform that
// cannot tell who is at the other end of a Unix socket; the socket's file
// permissions are then the only guard.
var errNoPeerCredentials = errors.New("peer credentials are not available on this platform")

// onSocket runs get on the descriptor of a Unix-socket connection, for a
// getsockopt; what get fails with is returned as is.
func onSocket(c net.Conn, get func(fd int) error) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("peer credentials of a %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var gerr error
	if err := raw.Control(func(fd uintptr) { gerr = get(int(fd)) }); err != nil {
		return err
	}
	return gerr
}

// creds are the credentials of the process at the other end of a connection.
type creds struct {
	uid, gid uint32
	pid      int32 // 0 when the platform does not say
	groups   []uint32
}

// peer is who a connection belongs to, decided once when it is accepted.
type peer struct {
	creds
	known  bool   // the credentials could be read
	name   string // the OS user name, as the journal records it
	denied error  // why the connection may not make calls; nil when allowed
}

// policy decides which peers may use the socket.
type policy struct {
	self uint32 // the service's effective uid
	// gid is control.group's gid; hasGroup is false without one.
	gid      uint32
	hasGroup bool
	// groupsOf returns a user's supplementary group IDs; SO_PEERCRED
	// carries only the primary one.
	groupsOf func(uid uint32) ([]uint32, error)
}

// authorize returns nil when the peer may connect: it runs as the service's
// own user, as root (who can read the store and the service's memory
// anyway), or belongs to the configured group.
func (p *policy) authorize(c creds) error {
	if c.uid == p.self || c.uid == 0 {
		return nil
	}
	if p.hasGroup {
		if c.gid == p.gid || slices.Contains(c.groups, p.gid) {
			return nil
		}
		if p.groupsOf != nil {
			if gs, err := p.groupsOf(c.uid); err == nil && slices.Contains(gs, p.gid) {
				return nil
			}
		}
		return fmt.Errorf("%w: uid %d is neither the service's user (uid %d) nor in its group (gid %d)", ErrForbidden, c.uid, p.self, p.gid)
	}
	return fmt.Errorf("%w: uid %d is not the service's user (uid %d) and no control.group is configured", ErrForbidden, c.uid, p.self)
}

// groupIDs looks a user's groups up in the system's user database.
func groupIDs(uid uint32) ([]uint32, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, len(ids))
	for _, s := range ids {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out, nil
}

// userName returns the OS user name of uid, or "uid N" when the user
// database does not know it.
func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + strconv.FormatUint(uint64(uid), 10)
}

// lookupGroup returns the gid of a group name (or a numeric gid).
func lookupGroup(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("control.group %q: %w", name, err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("control.group %q has gid %q: %w", name, g.Gid, err)
	}
	return uint32(n), nil
}

// identify decides who an accepted connection belongs to.
func (p *policy) identify(c net.Conn) *peer {
	cr, err := peerCredentials(c)
	switch {
	case errors.Is(err, errNoPeerCredentials):
		// The file permissions let the caller in; that is all we know.
		return &peer{name: "control socket user"}
	case err != nil:
		return &peer{name: "unknown", denied: fmt.Errorf("%w: cannot read the peer's credentials: %v", ErrForbidden, err)}
	}
	pe := &peer{creds: cr, known: true, name: userName(cr.uid)}
	pe.denied = p.authorize(cr)
	return pe
}
