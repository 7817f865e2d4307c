package mailer

import "errors"

// ErrConfig marks a configuration New cannot use: a missing host, a bad
// From address, credentials without STARTTLS, an invalid enrollment URL.
var ErrConfig = errors.New("invalid notification configuration")

// ErrTemplate marks a notification template that fails to parse, lacks a
// required block, or fails to render.
var ErrTemplate = errors.New("invalid notification template")

// ErrRecipient marks a notification whose To address is not a single valid
// address.
var ErrRecipient = errors.New("invalid recipient address")

// ErrTransient matches (with errors.Is) a send failure that may succeed if
// tried again later unchanged: the server unreachable, a timeout, a 4xx reply.
var ErrTransient = errors.New("transient send failure")

// ErrPermanent matches (with errors.Is) a send failure that needs a change
// first: a 5xx reply (recipient rejected, authentication failed), a TLS
// verification failure, a bad address or template.
var ErrPermanent = errors.New("permanent send failure")
