package smtp

import "errors"

// ErrClosed is returned by calls on a sink that has been closed.
var ErrClosed = errors.New("smtp sink closed")

// ErrUnsupportedMechanism is returned by Start for a SASL mechanism the
// sink cannot offer.
var ErrUnsupportedMechanism = errors.New("unsupported SASL mechanism")
