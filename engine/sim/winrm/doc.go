// Package winrm is a WS-Management (WinRM) server that behaves as a Windows
// server's WinRM service does for the remote-shell resource
// (http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd): Create a
// shell, run a Command in it through cmd.exe, Send stdin, Receive output by
// long-polling until there is output or the request's OperationTimeout runs
// out (then the w:TimedOut fault), Signal terminate and Delete. It answers
// SOAP 1.2 envelopes over HTTP POST /wsman, keeps shells per user with
// Windows' quota of 30, and chunks output so every answer stays under the
// request's MaxEnvelopeSize.
//
// Authentication is Basic, or NTLM inside Negotiate: the NTLMv2 response is
// verified against the account's password, the handshake must stay on one
// TCP connection, and the connection then stays authenticated, as Windows'
// HTTP stack does. Either scheme can be switched off (Windows ships with
// Basic off). Start serves it over TLS (engine/sim/simtls) or plain HTTP;
// SetDown refuses connections, as a server that is down does; SetFault
// injects latency, an HTTP error, a refusal of the credentials or a reset
// connection into one operation.
//
// Programs run behind cmd.exe semantics: the command line limit of 8,191
// characters, the built-ins hostname and echo, cmd.exe's "is not recognized"
// error for anything unknown, and a pluggable Program for each registered
// executable (the Exchange simulator registers powershell.exe).
//
// Its reason to exist is that easgate's Exchange adapter and the unmodified
// masterzen/winrm client can be tested against the wire protocol. It
// imports the standard library and golang.org/x/crypto/md4 (NTLM's hash);
// it never imports the Exchange adapter (engine/exchange), the WinRM client
// library, the store or the console.
package winrm
