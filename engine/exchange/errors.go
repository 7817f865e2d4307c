package exchange

import "errors"

// ErrConfig is wrapped by every configuration problem New reports.
var ErrConfig = errors.New("invalid exchange configuration")

// ErrConnection is wrapped by failures to reach the server or keep talking
// to it (network errors, WinRM faults, timeouts, a failed Exchange session):
// trying again later may succeed.
var ErrConnection = errors.New("exchange server connection failed")

// ErrUnauthorized is wrapped when the WinRM server refuses the credentials.
var ErrUnauthorized = errors.New("winrm server refused the credentials")

// ErrScript is wrapped when a script failed on the server: PowerShell
// reported an error and exited non-zero.
var ErrScript = errors.New("powershell script failed")

// ErrMissingCmdlets is returned by Test when the account's Exchange session
// lacks cmdlets the scripts call.
var ErrMissingCmdlets = errors.New("exchange cmdlets missing")
