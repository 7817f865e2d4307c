package engine

import (
	"strings"
	"time"
)

// DeviceJSON is a device record as `easgate devices --output json` prints
// it (CONTRACTS.md): nullable fields are pointers.
type DeviceJSON struct {
	Mailbox       string     `json:"mailbox"`
	DeviceID      string     `json:"device_id"`
	DeviceType    string     `json:"device_type"`
	DeviceModel   string     `json:"device_model"`
	DeviceOS      string     `json:"device_os"`
	UserAgent     string     `json:"user_agent"`
	AccessState   string     `json:"access_state"`
	AccessReason  string     `json:"access_reason"`
	DesiredAccess string     `json:"desired_access"`
	MDMID         *string    `json:"mdm_id"`
	Link          *string    `json:"link"`
	Compliance    *string    `json:"compliance"`
	FirstSync     time.Time  `json:"first_sync"`
	LastSync      *time.Time `json:"last_sync"`
	NotifiedAt    *time.Time `json:"notified_at"`
	NotifyCount   int        `json:"notify_count"`
	// Beyond the contract's fields: the decision in words, whether the
	// policy leaves the device alone, and the MDM record suggested for an
	// unmerged device.
	Reason         string  `json:"reason"`
	Exempt         bool    `json:"exempt"`
	SuggestedMDMID *string `json:"suggested_mdm_id"`
}

// JSON returns the record in its contract shape.
func (r *DeviceRecord) JSON() DeviceJSON {
	j := DeviceJSON{
		Mailbox: r.Mailbox, DeviceID: r.DeviceID, DeviceType: r.DeviceType, DeviceModel: r.DeviceModel,
		DeviceOS: r.DeviceOS, UserAgent: r.UserAgent, AccessState: r.AccessState.Lower(),
		AccessReason: r.AccessReason, DesiredAccess: string(r.Decision.Access), FirstSync: r.FirstSync.UTC(),
		NotifyCount: r.Notify.Count, Reason: r.Decision.Reason, Exempt: r.Decision.Exempt,
	}
	if j.DesiredAccess == "" {
		j.DesiredAccess = string(AccessNone)
	}
	if r.MDMID != "" {
		j.MDMID = ptr(r.MDMID)
		j.Link = ptr(string(r.Link))
		j.Compliance = ptr(string(r.Compliance))
	}
	if !r.LastSync.IsZero() {
		j.LastSync = ptr(r.LastSync.UTC())
	}
	if r.Suggested != "" {
		j.SuggestedMDMID = ptr(r.Suggested)
	}
	if !r.Notify.LastSent.IsZero() {
		j.NotifiedAt = ptr(r.Notify.LastSent.UTC())
	}
	return j
}

// Lower is the state as the device JSON spells it: allowed, blocked,
// quarantined or unknown.
func (s AccessState) Lower() string {
	switch s {
	case StateAllowed, StateBlocked, StateQuarantined:
		return strings.ToLower(string(s))
	}
	return "unknown"
}

// RunSummary is the run summary JSON of `easgate sync --output json` and
// `easgate demo --headless` (CONTRACTS.md).
type RunSummary struct {
	Run    RunHead `json:"run"`
	Counts Counts  `json:"counts"`
}

// RunHead is the "run" object of a run summary.
type RunHead struct {
	ID       string    `json:"id"`
	Kind     RunKind   `json:"kind"`
	Trigger  Trigger   `json:"trigger"`
	Status   RunStatus `json:"status"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Error    string    `json:"error"`
}

// Summary returns the run's summary.
func (r *Run) Summary() RunSummary {
	return RunSummary{
		Run: RunHead{ID: r.ID, Kind: r.Kind, Trigger: r.Trigger, Status: r.Status,
			Started: r.Started.UTC(), Finished: r.Finished.UTC(), Error: r.Error},
		Counts: r.Counts,
	}
}
