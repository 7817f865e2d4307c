// Package exchange is easgate's Exchange adapter: it implements
// engine.ExchangeReader and engine.ExchangeWriter by running fixed
// PowerShell scripts in powershell.exe on an Exchange server through WinRM
// (github.com/masterzen/winrm), and reading what they print.
//
// Every script is a fixed text (see Scripts) sent as -EncodedCommand; all
// data, the service credential for the Exchange session included, travels
// as one JSON object on the command's stdin, so no string from a device, a
// user or the configuration is ever spliced into PowerShell code. Scripts
// answer with one JSON object per line on stdout; the parser also takes
// Windows PowerShell 5.1's quirky forms, reports a malformed line by its
// number and skips it. Errors arrive on stderr as CLIXML and become
// readable errors.
//
// The WinRM client library has no context support: the runner drives
// CreateShell and Execute itself through its own HTTP transport, so a
// cancelled context aborts the request in flight, and then signals the
// command and deletes the shell.
//
// It imports the engine and the WinRM client library. It never imports
// another adapter, the store, the console or a simulator (only its tests
// use engine/sim).
package exchange
