// Package control is easgate's control socket: the server that a running
// `easgate run` exposes on a Unix socket, and the Client that the console and
// the CLI use to attach to it. The Client implements engine.API, so whatever
// drives an in-process engine drives a service the same way.
//
// Protocol. HTTP/1.1 over the Unix socket named by control.socket. Request
// and response bodies are JSON: the engine's own types in their JSON
// encoding. Every path is under /v1/:
//
//	GET  /v1/ping                 Info: service, version, pid, store, the caller's user name
//	GET  /v1/status               engine.Status
//	POST /v1/devices              engine.DeviceQuery       → []engine.DeviceRecord
//	POST /v1/device               {"device": key}          → engine.DeviceDetail
//	POST /v1/runs                 {"limit": n}             → []engine.Run
//	POST /v1/journal              engine.JournalQuery      → []engine.JournalEntry
//	POST /v1/sync                 engine.SyncRequest       → engine.RunReport (when the run ends)
//	GET  /v1/events               newline-delimited JSON, one engine.Event per line, until either side closes
//	POST /v1/run-detail           {"id": run}              → engine.RunDetail
//	POST /v1/candidates           {"device": key}          → []engine.Candidate
//	POST /v1/logs                 {"limit": n}             → []engine.LogEntry
//	POST /v1/link                 engine.LinkRequest
//	POST /v1/unlink               engine.DeviceRequest
//	POST /v1/resend               engine.ResendRequest     → []engine.NotifyResult
//	POST /v1/preview              {"device": key}          → engine.MailPreview
//	POST /v1/override             engine.OverrideRequest
//	POST /v1/remove-partnership   engine.DeviceRequest
//	POST /v1/wipe                 engine.WipeRequest
//	POST /v1/statistics           {"device": key}          → engine.DeviceStatistics
//	POST /v1/approve              engine.PlanRequest       → engine.RunReport
//	POST /v1/discard              engine.PlanRequest
//	POST /v1/cancel               {}
//	GET  /v1/store/backup         the store's bbolt snapshot (application/octet-stream); the
//	                              trailers Easgate-Backup-Bytes and Easgate-Error say how it ended
//	POST /v1/store/check          {"problems": [...]}: the store's consistency check
//
// A call without a result answers 204. A failed call answers a 4xx or 5xx
// status with {"error": {"message": "…", "codes": ["stale-plan", …]}}: the
// codes name the engine sentinels the error wrapped (errors.Is on the server),
// and the Client's error wraps the same sentinels again, so that
// errors.Is(err, engine.ErrStalePlan) holds on both sides of the socket.
//
// Who may connect. The socket is created 0600, or 0660 and owned by
// control.group when one is configured, in a private directory and then
// renamed into place, so that it never exists with looser permissions. On
// top of the file permissions the server reads the peer's credentials of
// every connection (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS and
// FreeBSD) and answers only the service's own user, root, and members of
// control.group; anyone else gets 403 and a log line. Every request's Actor
// is replaced with the peer's OS user name, so the journal records who acted
// whatever the client claimed. A socket file left by a service that crashed
// (nothing accepts on it) is detected and replaced on start; a socket that
// still answers is another service's, and Listen refuses it.
//
// Package control imports the engine's API and domain types and
// golang.org/x/sys; it must not import store, tui, an adapter or the
// simulators: the service hands it the store's maintenance operations as the
// small Maintenance interface.
package control
