// Package tui is easgate's interactive console: a Bubble Tea v2 program with
// one root model (Model), a header with the engine's overview, one component
// per view (unmerged EAS records, blocked and quarantined devices, sync runs),
// keys in keys.go and styles built from a semantic theme in styles.go.
//
// Every engine call runs in a tea.Cmd, never in Update, so a slow engine does
// not freeze input; engine events arrive through a command that waits on the
// engine.API Subscribe channel and is re-armed after each event. Tables render
// only the rows that fit on screen, so the console stays fast at 150,000
// devices. Device fields are untrusted: control characters and escape
// sequences are shown as visible symbols, never sent to the terminal.
//
// It imports engine (the API, its events and domain types) and charm
// libraries only: never store, an adapter (engine/exchange, engine/intune,
// engine/mailer) or a simulator. While the console runs it writes nothing to
// stdout or stderr besides the screen; logging is the caller's job.
package tui
