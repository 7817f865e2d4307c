// Package mailer is easgate's notification adapter: it implements
// engine.Mailer by rendering the enrollment notification from one template
// file (a subject, a plain-text and an HTML block) and sending it over SMTP
// with wneessen/go-mail, with STARTTLS and SMTP AUTH when configured.
//
// A run can mail tens of thousands of users, so connections are kept for
// the next mails (up to Exchange's 20 a connection), TLS sessions are
// resumed, and each mail is one round trip where the server offers
// PIPELINING and CHUNKING, as Exchange does: MAIL FROM, RCPT TO and BDAT
// LAST with the message in one write. go-mail dials, authenticates and
// builds the MIME message; a server without those extensions gets
// go-mail's own lockstep send.
//
// Device fields come from Exchange and are untrusted: they are stripped of
// control characters and terminal escapes before any template sees them,
// HTML is escaped by html/template, and headers are built by go-mail from
// single-line values, so a device model can neither add a header nor
// markup. Send errors say whether trying again later can help (see
// SendError).
//
// It imports the engine for its domain types and nothing else of easgate:
// not the store, the console, another adapter or a simulator (its tests use
// the SMTP sink in engine/sim/smtp).
package mailer
