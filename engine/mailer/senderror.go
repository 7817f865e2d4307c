package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"

	gomail "github.com/wneessen/go-mail"

	"easgate/engine"
)

// SendError is why Send failed. It matches ErrTransient or ErrPermanent
// with errors.Is, and its Transient method answers the same for callers
// that cannot import this package (the engine checks for
// interface{ Transient() bool }).
type SendError struct {
	Device engine.DeviceKey // the notification's device, cleaned for display
	To     string           // the recipient, cleaned for display
	Server string           // host:port of the SMTP server
	// Code is the SMTP reply code that refused the mail (421, 451, 535,
	// 550, …), or 0 when the failure was not a reply.
	Code      int
	Err       error
	transient bool
}

// Error says what failed, for whom and where, on one line; never the
// password.
func (e *SendError) Error() string {
	return fmt.Sprintf("send notification for %s to %s via %s: %s", e.Device, e.To, e.Server,
		strings.ReplaceAll(e.Err.Error(), "\n", "; ")) // go-mail joins errors with line breaks
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// Transient reports whether sending the same mail later, unchanged, may
// succeed: the server was unreachable or timed out, or answered 4xx.
func (e *SendError) Transient() bool { return e.transient }

// Is matches ErrTransient or ErrPermanent, whichever applies.
func (e *SendError) Is(target error) bool {
	return (target == ErrTransient && e.transient) || (target == ErrPermanent && !e.transient)
}

func newSendError(n engine.Notification, server string, err error) *SendError {
	code, transient := classify(err)
	return &SendError{
		Device:    engine.DeviceKey(cleanLine(string(n.Device), maxFieldRunes)),
		To:        cleanLine(n.To, maxFieldRunes),
		Server:    server,
		Code:      code,
		Err:       err,
		transient: transient,
	}
}

// classify returns the SMTP reply code in err, if any, and whether trying
// again later may help. Replies decide by their class (4xx transient, 5xx
// permanent); failures to reach or keep the server are transient; a
// certificate that does not verify, a bad address or template, and
// anything unrecognised are permanent.
func classify(err error) (code int, transient bool) {
	switch {
	case errors.Is(err, ErrRecipient), errors.Is(err, ErrTemplate), errors.Is(err, ErrConfig):
		return 0, false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return 0, true
	}
	// A reply during the connection: greeting, EHLO, STARTTLS, AUTH.
	if tpe, ok := errors.AsType[*textproto.Error](err); ok {
		return tpe.Code, tpe.Code/100 == 4
	}
	// A failure of the transaction itself: MAIL, RCPT, DATA.
	if se, ok := errors.AsType[*gomail.SendError](err); ok {
		if c := se.ErrorCode(); c != 0 {
			return c, c/100 == 4
		}
		switch se.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			return 0, false
		}
		return 0, true // the connection failed mid-transaction
	}
	if isTLSFailure(err) {
		return 0, false
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok {
		return 0, !dnsErr.IsNotFound
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return 0, true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return 0, true
	}
	return 0, false
}

// isTLSFailure reports a handshake that failed on the certificate or the
// protocol: nothing changes that but a change of configuration.
func isTLSFailure(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	return false
}
