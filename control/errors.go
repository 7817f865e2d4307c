package control

import "errors"

// ErrNoService is returned by Dial when no service listens on the socket:
// the file does not exist, or nothing accepts on it (a crashed service's
// socket). The caller opens the store itself instead.
var ErrNoService = errors.New("no easgate service is listening on the control socket")

// ErrForbidden is returned when the socket refuses the caller: its file
// permissions, or the server's check of the peer's credentials.
var ErrForbidden = errors.New("the control socket refused this user")

// ErrSocketInUse is returned by Listen when another service already
// answers on the socket.
var ErrSocketInUse = errors.New("another easgate service answers on the control socket")

// ErrSocketPath is returned by Listen for a path a Unix socket cannot have:
// too long, or an existing file that is not a socket.
var ErrSocketPath = errors.New("unusable control socket path")

// ErrNoMaintenance is returned for a store operation the service was not
// given (the server's Config.Store is nil).
var ErrNoMaintenance = errors.New("the service offers no store maintenance")
