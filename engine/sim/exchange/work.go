package exchange

import "sync/atomic"

// Work counts what the cmdlets of every script did, item by item: what
// the cost model charges for. A benchmark compares it with the least
// work the organisation needs.
type Work struct {
	Devices    int64 `json:"devices"`     // partnerships Get-MobileDevice streamed
	Mailboxes  int64 `json:"mailboxes"`   // CAS mailboxes Get-CASMailbox returned
	UPNLookups int64 `json:"upn_lookups"` // mailboxes Get-Mailbox looked up
	Statistics int64 `json:"statistics"`  // Get-MobileDeviceStatistics of one partnership
	Edits      int64 `json:"edits"`       // Set-CASMailbox calls
	EditIDs    int64 `json:"edit_ids"`    // device IDs those calls added or removed
}

type workCounters struct {
	devices, mailboxes, upnLookups, statistics, edits, editIDs atomic.Int64
}

func (w *workCounters) load() Work {
	return Work{Devices: w.devices.Load(), Mailboxes: w.mailboxes.Load(), UPNLookups: w.upnLookups.Load(),
		Statistics: w.statistics.Load(), Edits: w.edits.Load(), EditIDs: w.editIDs.Load()}
}
