package exchange

import (
	"errors"
	"fmt"
)

// ErrConfig is wrapped by every configuration problem New reports.
var ErrConfig = errors.New("invalid exchange configuration")

// ErrConnection is wrapped by failures to reach the server or keep talking
// to it (network errors, WinRM faults, timeouts, a failed Exchange session):
// trying again later may succeed. ErrUnreachable, ErrTLS and ErrServerError
// say more.
var ErrConnection = errors.New("exchange server connection failed")

// ErrUnreachable is wrapped when no connection to the WinRM port could be
// made: a refused or timed-out connection, or a name that does not resolve.
var ErrUnreachable = errors.New("cannot reach the WinRM service")

// ErrTLS is wrapped when the TLS handshake with the WinRM service failed:
// an untrusted or mismatched certificate, or a server that does not speak
// TLS on the port.
var ErrTLS = errors.New("TLS with the WinRM service failed")

// ErrServerError is wrapped when the WinRM service answered with an HTTP
// error other than 401, such as a WS-Management fault (HTTP 500).
var ErrServerError = errors.New("the WinRM service answered with an error")

// ErrUnauthorized is wrapped when the WinRM server refuses the credentials.
var ErrUnauthorized = errors.New("winrm server refused the credentials")

// ErrScript is wrapped when a script failed on the server: PowerShell
// reported an error and exited non-zero, or Exchange refused an operation.
var ErrScript = errors.New("powershell script failed")

// ErrThrottled is wrapped when Exchange refused an operation because a
// throttling limit was reached (such as EasMaxDeviceDeletesPerMonth).
var ErrThrottled = errors.New("exchange throttling limit reached")

// ErrMissingCmdlets is returned by Test when the account's Exchange session
// lacks cmdlets the scripts call.
var ErrMissingCmdlets = errors.New("exchange cmdlets missing")

// ErrClosed is returned by calls on a closed client.
var ErrClosed = errors.New("exchange client closed")

// connError is a failure to talk to the WinRM service: its message is the
// kind's and the cause's; errors.Is finds the kind, ErrConnection and the
// cause.
type connError struct {
	kind error // ErrUnreachable, ErrTLS, ErrServerError, or ErrConnection itself
	err  error
}

func (e *connError) Error() string { return fmt.Sprintf("%v: %v", e.kind, e.err) }

func (e *connError) Unwrap() []error {
	if e.kind == ErrConnection {
		return []error{ErrConnection, e.err}
	}
	return []error{e.kind, ErrConnection, e.err}
}
