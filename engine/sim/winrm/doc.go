// Package winrm is a WS-Management (WinRM) server that behaves as a Windows
// server's WinRM service does for the remote-shell resource
// (http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd): Create a
// shell, run a Command in it through cmd.exe, Send stdin, Receive output by
// long-polling until there is output or the request's OperationTimeout runs
// out (then the w:TimedOut fault), Signal terminate and Delete. It answers
// SOAP 1.2 envelopes over HTTP POST /wsman with Basic authentication, keeps
// shells per user with Windows' quota of 30, and chunks output so every
// answer stays under the request's MaxEnvelopeSize.
//
// Programs run behind cmd.exe semantics: the command line limit of 8,191
// characters, the built-ins hostname and echo, cmd.exe's "is not recognized"
// error for anything unknown, and a pluggable Program for each registered
// executable (the Exchange simulator registers powershell.exe).
//
// Its reason to exist is that easgate's Exchange adapter and the unmodified
// masterzen/winrm client can be tested against the wire protocol. It imports
// only the standard library; it never imports the Exchange adapter
// (engine/exchange), the WinRM client library, the store or the console.
package winrm
