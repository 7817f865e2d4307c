// Package smtp is easgate's SMTP sink: a real SMTP server (emersion/go-smtp)
// on 127.0.0.1 that accepts mail, keeps every message with its MIME parts
// decoded, and can misbehave on purpose, so that the real notification
// client (go-mail, in engine/mailer) is what the tests and the demo exercise.
//
// It offers STARTTLS with a caller's certificate, AUTH PLAIN and LOGIN with
// one configured user, and fault injection: the whole server down
// (connections refused), a recipient rejected (550) or deferred (451), and a
// delay per message.
//
// It imports nothing of engine/mailer, the engine, the store or the console:
// it speaks the wire protocol only.
package smtp
