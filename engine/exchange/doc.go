// Package exchange is easgate's Exchange adapter: it implements
// engine.ExchangeReader, engine.ExchangeWriter, engine.ExchangeAdmin and
// engine.HealthReporter by running fixed PowerShell scripts in
// powershell.exe on an Exchange server through WinRM
// (github.com/masterzen/winrm), and reading what they print.
//
// Every script is a fixed text (see Scripts) sent as -EncodedCommand,
// marked by its first line (# easgate-script: inventory/1); all data, the
// service credential for the Exchange session included, travels as one
// JSON object on the command's stdin, so no string from a device, a user
// or the configuration is ever spliced into PowerShell code. Scripts
// answer with one JSON object per line on stdout, the field t saying what
// it is; the parser also takes Windows PowerShell 5.1's quirky forms,
// reports a malformed line by its number and skips it (which makes an
// inventory incomplete). Errors arrive on stderr as CLIXML and become
// readable errors.
//
// One PowerShell process per call: an inventory is one process whatever the
// organisation's size; ApplyChanges is one process per call, and at most
// Config.Parallel run at once. A shell is kept open for the next command
// (ShellIdle) and deleted by Close.
//
// The WinRM library has no context support and loses HTTP 500 faults in
// its own transport: the runner drives CreateShell and Execute itself
// through its own transport, so a cancelled context or a command's
// deadline aborts the request in flight, signals the command and deletes
// the shell. The transport authenticates with Basic, NTLM (NTLMv2 messages
// from go-ntlmssp on connection-bound lanes, as Windows binds an NTLM logon
// to its TCP connection) or Kerberos (gokrb5), and classifies failures:
// ErrUnreachable, ErrTLS, ErrUnauthorized, ErrServerError. Servers are
// tried in failover order; one that cannot be reached is skipped for
// Config.CoolDown.
//
// Output is most of what an inventory moves, and the library reads each
// Receive answer into an XPath tree. The transport lifts the stdout and
// stderr streams out of the answers it can read exactly (a strict scanner
// of the plain form Windows sends: no comments, CDATA or entities outside
// attribute values, namespaces checked) and decodes them itself; the
// library gets the rest of the answer; from the first answer the scanner
// cannot vouch for, it gets the command's answers whole, so that the two
// paths keep the output in order.
//
// It imports the engine, the WinRM client library and its NTLM and
// Kerberos libraries. It never imports another adapter, the store, the
// console or a simulator (only its tests use engine/sim).
package exchange
