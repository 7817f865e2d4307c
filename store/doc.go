// Package store keeps easgate's state in a bbolt file: it implements the
// engine's Store port (the saved State, compare-and-swap commits, the change
// journal and the run history) and the maintenance operations behind
// `easgate store backup|check|compact`.
//
// Layout. One bbolt file, created 0600, with these top-level buckets:
//
//	meta       schema version, serial, engine.Meta (JSON), held plan (JSON), creation time
//	records    engine.DeviceRecord by DeviceKey          (binary codec, codec.go)
//	mdm        engine.MDMDevice by Intune device ID      (binary codec)
//	mailboxes  engine.Mailbox by lower-cased UPN         (binary codec)
//	links      engine.Link by DeviceKey                  (binary codec)
//	owned      engine.OwnedEntry by OwnedKey             (binary codec)
//	runs       engine.Run (JSON) by 8-byte big-endian start time (Unix ns) + run ID,
//	           so a cursor walks runs in chronological order
//	journal    engine.JournalEntry (binary codec) by 8-byte big-endian sequence
//	           number from the bucket's NextSequence
//	stage      only while a large first snapshot is committed: the records, mdm
//	           or mailboxes bucket being filled in bounded transactions
//	           (stage.go); moved into place by the commit that moves the serial
//
// The bulk buckets use a small hand-written binary codec rather than JSON
// because Load must read 150,000 device records and 100,000 mailboxes, and
// a quick sync 150,000 MDM records, quickly on a small machine (codec.go has
// the numbers). Load counts the MDM records without reading them: the
// engine reads them when it needs them (MDMDevice, MDMDevices), and a full
// sync's commit replaces them whole, writing only the ones that changed
// (Commit.ReplaceMDM).
// Every encoded value starts with a format version byte, so a field added to
// an engine type gets a new version and old values stay readable; a
// reflection test fails when an engine type grows a field the codec does not
// carry. Meta, the held plan and runs are few and stay JSON.
//
// Damage. bbolt panics on pages it cannot make sense of, and a page beyond
// the end of a truncated file faults. Every transaction runs with
// debug.SetPanicOnFault and a recover that turns both into ErrCorrupt with a
// hint to restore a backup or rebuild with a full sync. bbolt walks pages in
// goroutines of its own in two places (rebuilding the freelist on a
// read-write open, and Check), where nothing can recover; so a read-write
// open first opens the file read-only, checks its length and walks every
// page itself, and Check walks and decodes everything before bbolt's check.
//
// Serial. Commit is a compare-and-swap on the serial. The serial moves only
// when a commit changes state (Meta, records, MDM records, mailboxes, links,
// owned entries or the held plan); a commit that only saves a run or appends
// journal entries, SaveRun and RecordChanges leave it where it is. The
// applier calls RecordChanges while a plan computed at serial S is being
// applied and the engine then commits the result expecting S, so journaling
// and ownership bookkeeping must not move it.
//
// Retention. Commit (and Prune) keep the newest MaxRuns runs (default 1,000)
// and the journal entries with the newest MaxJournalEntries sequence numbers
// (default 400,000), and, when MaxJournalAge is set, drop entries older than
// that. SaveRun also trims the run history.
//
// Package store imports the engine's domain types and bbolt. It must not
// import tui, an adapter (engine/exchange, engine/intune, engine/mailer) or
// the simulators; the engine never imports store: cmd/easgate wires it in.
package store
