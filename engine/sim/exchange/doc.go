// Package exchange simulates the Exchange Management Shell that easgate
// reaches through powershell.exe on a WinRM server: a Host is the
// powershell.exe program of the simulated WinRM server (engine/sim/winrm),
// over a simulated organisation (engine/sim/org).
//
// It cannot interpret PowerShell. It takes `powershell.exe -NoProfile
// -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <base64 of
// UTF-16LE>` as powershell.exe does (a badly encoded command gets the real
// error), reads stdin to its end, and recognises each easgate script by its
// marker line (`# easgate-script: inventory/1`). Before running one it
// checks the script as a server would: every Verb-Noun command in it must
// be a cmdlet the session has (PowerShell's own, and the Exchange cmdlets
// the Exchange session or snap-in provides), otherwise the script fails
// with PowerShell's "is not recognized" error. It then performs the
// cmdlets' effect on the organisation and writes what the script writes:
// JSON lines on stdout, errors and warnings as CLIXML on stderr.
//
// Exchange semantics come from package org: access states by org.AccessOf
// (computed on every read, so a new DefaultAccessLevel or rule hits every
// device it governs at once), list edits by org.ChangeLists. Get-MobileDevice
// without `-ResultSize Unlimited` returns the first 1000 devices and
// Exchange's warning. A session opened with New-PSSession checks the
// credential that travels in the stdin payload and counts against
// Exchange's 18 concurrent PowerShell sessions per user. The admin scripts
// remove partnerships (within EasMaxDeviceDeletesPerMonth, 20 per mailbox a
// month), request wipes (shown by Get-MobileDeviceStatistics), set the
// org's DefaultAccessLevel, manage device access rules (matched exactly)
// and list the servers with client access services.
//
// A cost model (Cost, off by default) makes the host take the time a real
// server takes, as sleeps: process start, the Exchange session, each
// device, mailbox and statistic read, each Set-CASMailbox and each admin
// cmdlet, scaled.
//
// The Host keeps every script text it received and counts process starts,
// sessions and scripts (Counters), for tests and benchmarks. It imports
// the simulated WinRM server's Program interface and org, never the
// Exchange adapter (engine/exchange) it imitates the other end of.
package exchange
