package mailer

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"
	"testing"

	"easgate/engine"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name      string
		err       error
		code      int
		transient bool
	}{
		{name: "connection refused", err: fmt.Errorf("dial failed: %w", refused), transient: true},
		{name: "greeting 421", err: fmt.Errorf("dial failed: %w", &textproto.Error{Code: 421, Msg: "4.3.2 Service not available"}), code: 421, transient: true},
		{name: "auth 454 temporary", err: &textproto.Error{Code: 454, Msg: "4.7.0 Temporary authentication failure"}, code: 454, transient: true},
		{name: "auth 535", err: fmt.Errorf("SMTP AUTH failed: %w", &textproto.Error{Code: 535, Msg: "5.7.8 Authentication failed"}), code: 535},
		{name: "greeting 554", err: &textproto.Error{Code: 554, Msg: "5.7.1 not allowed"}, code: 554},
		{name: "unknown authority", err: fmt.Errorf("dial failed: %w", x509.UnknownAuthorityError{}), transient: false},
		{name: "wrong host name", err: x509.HostnameError{Host: "smtp"}, transient: false},
		{name: "host not in dns", err: &net.DNSError{Err: "no such host", Name: "smtp", IsNotFound: true}},
		{name: "dns timeout", err: &net.DNSError{Err: "i/o timeout", Name: "smtp", IsTimeout: true}, transient: true},
		{name: "deadline", err: fmt.Errorf("%w: %w", context.DeadlineExceeded, net.ErrClosed), transient: true},
		{name: "cancelled", err: context.Canceled, transient: true},
		{name: "server hung up", err: io.EOF, transient: true},
		{name: "reset", err: syscall.ECONNRESET, transient: true},
		{name: "bad recipient", err: fmt.Errorf("%w: no @", ErrRecipient)},
		{name: "template", err: fmt.Errorf("render: %w", ErrTemplate)},
		{name: "no usable auth mechanism", err: fmt.Errorf("SMTP AUTH failed: %w", ErrConfig)},
		{name: "no starttls offered", err: errors.New(`STARTTLS mode set to: "TLSMandatory", but target host does not support STARTTLS`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, transient := classify(tt.err)
			if code != tt.code || transient != tt.transient {
				t.Errorf("classify(%v) = %d %v, want %d %v", tt.err, code, transient, tt.code, tt.transient)
			}
			se := newSendError(engine.Notification{Device: "anna@contoso.com/x\r\ny", To: "anna@contoso.com"}, "smtp:587", tt.err)
			if errors.Is(se, ErrTransient) != tt.transient || errors.Is(se, ErrPermanent) == tt.transient {
				t.Errorf("errors.Is disagrees with transient=%v", tt.transient)
			}
			if !errors.Is(se, tt.err) {
				t.Errorf("SendError does not unwrap to its cause")
			}
			var tr interface{ Transient() bool }
			if !errors.As(fmt.Errorf("notify: %w", se), &tr) || tr.Transient() != tt.transient {
				t.Errorf("Transient() not reachable through wrapping")
			}
			if se.Device != "anna@contoso.com/x y" {
				t.Errorf("Device = %q, want it cleaned", se.Device)
			}
		})
	}
}
