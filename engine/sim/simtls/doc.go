// Package simtls gives easgate's simulators a throw-away certificate
// authority and a server certificate for 127.0.0.1, ::1 and localhost, so
// that they speak HTTPS (or STARTTLS) the way the real services do and the
// real clients verify a real chain; and self-signed RSA client
// certificates, as an application registered in Entra ID authenticates
// with.
//
// Everything lives in memory and expires within a day unless asked
// otherwise; nothing here is fit for anything but a simulator. It imports
// only the standard library.
package simtls
