// Package sim runs easgate's simulators together: a simulated Exchange
// organisation behind a real WS-Management (WinRM) endpoint, a simulated
// Intune tenant behind Microsoft Graph's REST and OAuth endpoints, and an
// SMTP sink, all on 127.0.0.1, sharing one generated organisation
// (package org).
//
// The simulators speak the wire protocols, so the real client libraries
// (masterzen/winrm, msgraph-sdk-go, go-mail) are what easgate's tests and
// demo exercise. They import nothing of the adapters they imitate
// (engine/exchange, engine/intune, engine/mailer), nor the store or the
// console.
package sim
