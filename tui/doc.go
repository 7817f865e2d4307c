// Package tui is easgate's interactive console: a Bubble Tea v2 program an
// Exchange administrator works in all day, over SSH or at a local console.
//
// One root model (Model) holds a two-line header (connections, last run,
// the run under way with its progress), a tab line, the view showing, a
// status line and a help bar. The tabs are Overview, Unmerged, Blocked,
// Devices, Runs, Plan, Journal and Log (keys 1–8, tab and shift+tab); enter
// opens a detail page over a tab (a device, a run) and esc closes it. Each
// view is a component with its own Update, View, SetSize and key help
// (views.go); keys live in keys.go and styles, built from a semantic theme,
// in styles.go: no view names a key string or a colour. Actions that change
// anything open a dialog (dialog.go); the dangerous ones (block, wipe,
// remove, approve) are marked, start on No and are never confirmed by
// enter alone; in read-only mode they are hidden and a key that does nothing
// says why on the status line.
//
// The console never blocks on I/O: every engine call and the CSV export run
// in a tea.Cmd (commands.go, actions.go), never in Update. Engine events
// arrive through a command that waits on the engine.API Subscribe channel,
// gathers what follows within a few milliseconds into one message, and is
// re-armed after each batch; loads are coalesced, so a burst of events
// costs one reload. It works the same over any engine.API: the in-process
// engine, or a client of a running service's control socket.
//
// It stays fast at 150,000 devices: the device views share one read of the
// records (each showing a subset, in its own order), tables draw only the
// rows on screen, a filter narrowing as it is typed scans only the last
// matches (a full scan is split over the cores), and sorting a big table
// runs in a command. Device fields are untrusted: control characters and
// escape sequences are shown as visible symbols, never sent to the terminal
// (sanitize.go), and CSV cells that a spreadsheet would run are defused.
//
// It imports engine (the API, its events and domain types) and charm
// libraries only: never store, an adapter (engine/exchange, engine/intune,
// engine/mailer) or a simulator. While the console runs it writes nothing to
// stdout or stderr besides the screen; logging is the caller's job.
package tui
