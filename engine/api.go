package engine

import (
	"context"
	"time"
)

// API is what the console and the CLI use to drive easgate. The Engine
// implements it in-process; a client of a running service's control socket
// implements it remotely. Results are copies the caller may keep.
type API interface {
	// Status is the overview: counts, last and running run, health, warnings.
	Status(ctx context.Context) (Status, error)
	// Devices returns the device records the query selects, sorted by
	// mailbox then device ID.
	Devices(ctx context.Context, q DeviceQuery) ([]DeviceRecord, error)
	// Device returns one device with everything known about it.
	Device(ctx context.Context, key DeviceKey) (*DeviceDetail, error)
	// Runs returns up to limit runs, newest first.
	Runs(ctx context.Context, limit int) ([]Run, error)
	// Journal returns journal entries, oldest first.
	Journal(ctx context.Context, q JournalQuery) ([]JournalEntry, error)
	// Sync runs a sync now and returns when it has ended. A request while a
	// run is going waits for that run and then runs (requests coalesce).
	Sync(ctx context.Context, req SyncRequest) (*RunReport, error)
	// Subscribe streams events until ctx is done; the channel is then closed.
	// A slow reader loses events rather than slowing the engine; every event
	// carries enough to redraw from.
	Subscribe(ctx context.Context) (<-chan Event, error)

	// RunDetail returns a run with the journal entries it wrote and, while
	// the brake holds it, its plan.
	RunDetail(ctx context.Context, id string) (*RunDetail, error)
	// Candidates returns the MDM records of a device's user that could be
	// linked to it, best first; the planner's suggestion is marked.
	Candidates(ctx context.Context, device DeviceKey) ([]Candidate, error)
	// Logs returns up to limit recent log lines of the engine, oldest first.
	Logs(ctx context.Context, limit int) ([]LogEntry, error)

	// Link merges an EAS record with an MDM record by hand and reconciles
	// the device at once.
	Link(ctx context.Context, req LinkRequest) error
	// Unlink removes a manual link and reconciles the device at once.
	Unlink(ctx context.Context, req DeviceRequest) error
	// Resend sends the enrollment notification for each device now,
	// whatever its resend schedule says.
	Resend(ctx context.Context, req ResendRequest) ([]NotifyResult, error)
	// Preview renders the notification a device's user would get.
	Preview(ctx context.Context, device DeviceKey) (*MailPreview, error)
	// Override allows or blocks a device by hand, until Until (zero: until
	// cleared); AccessNone clears an override. It is applied at once and
	// beats the policy until it expires.
	Override(ctx context.Context, req OverrideRequest) error
	// RemovePartnership removes the device's partnership from Exchange
	// (Remove-MobileDevice).
	RemovePartnership(ctx context.Context, req DeviceRequest) error
	// Wipe asks Exchange to wipe the device (Clear-MobileDevice), or only
	// the mail account on it.
	Wipe(ctx context.Context, req WipeRequest) error
	// Statistics reads Exchange's statistics of one partnership, live.
	Statistics(ctx context.Context, device DeviceKey) (*DeviceStatistics, error)
	// Approve applies exactly the plan the brake holds, if the store has not
	// moved on since it was computed (else ErrStalePlan).
	Approve(ctx context.Context, req PlanRequest) (*RunReport, error)
	// Discard drops the held plan.
	Discard(ctx context.Context, req PlanRequest) error
	// Cancel stops the running sync: no new change starts, changes in
	// flight finish or fail, and the run is recorded as failed.
	Cancel(ctx context.Context, actor string) error
}

// RunDetail is a run with what it did.
type RunDetail struct {
	Run     Run            `json:"run"`
	Journal []JournalEntry `json:"journal"`
	// Plan is set while the run's plan is held by the brake.
	Plan *Plan `json:"plan,omitempty"`
}

// Candidate is an MDM record that may be a device's Intune record.
type Candidate struct {
	MDM       MDMDevice `json:"mdm"`
	Suggested bool      `json:"suggested"`
	Why       string    `json:"why"`
}

// LogEntry is one log line.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Attrs   string    `json:"attrs"` // key=value pairs, as the text handler writes them
}

// LinkRequest asks to link a device to an MDM record.
type LinkRequest struct {
	Device DeviceKey `json:"device"`
	MDMID  string    `json:"mdm_id"`
	Actor  string    `json:"actor"`
}

// DeviceRequest names a device an admin acts on.
type DeviceRequest struct {
	Device DeviceKey `json:"device"`
	Actor  string    `json:"actor"`
}

// ResendRequest names devices whose users get the notification again.
type ResendRequest struct {
	Devices []DeviceKey `json:"devices"`
	Actor   string      `json:"actor"`
}

// NotifyResult is the outcome of one notification.
type NotifyResult struct {
	Device DeviceKey `json:"device"`
	To     string    `json:"to"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
}

// MailPreview is a rendered notification.
type MailPreview struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// OverrideRequest allows or blocks a device by hand.
type OverrideRequest struct {
	Device DeviceKey `json:"device"`
	Access Access    `json:"access"` // allow | block | none (clear)
	Until  time.Time `json:"until"`  // zero: no expiry
	Note   string    `json:"note"`
	Actor  string    `json:"actor"`
}

// WipeRequest asks for a remote wipe.
type WipeRequest struct {
	Device      DeviceKey `json:"device"`
	AccountOnly bool      `json:"account_only"`
	Actor       string    `json:"actor"`
}

// PlanRequest names the held plan an admin approves or discards.
type PlanRequest struct {
	PlanID string `json:"plan_id"`
	Actor  string `json:"actor"`
}

// DeviceFilter names a subset of device records.
type DeviceFilter string

// Device filters, as `easgate devices --state` takes them.
const (
	FilterAll         DeviceFilter = "all"
	FilterUnmerged    DeviceFilter = "unmerged"
	FilterBlocked     DeviceFilter = "blocked"
	FilterQuarantined DeviceFilter = "quarantined"
	FilterAllowed     DeviceFilter = "allowed"
	FilterExempt      DeviceFilter = "exempt"
)

// ParseDeviceFilter checks a filter name.
func ParseDeviceFilter(s string) (DeviceFilter, bool) {
	switch f := DeviceFilter(s); f {
	case FilterAll, FilterUnmerged, FilterBlocked, FilterQuarantined, FilterAllowed, FilterExempt:
		return f, true
	}
	return "", false
}

// Match reports whether the record is in the subset.
func (f DeviceFilter) Match(r *DeviceRecord) bool {
	switch f {
	case FilterAll, "":
		return true
	case FilterUnmerged:
		return !r.Merged() && r.IsEAS()
	case FilterBlocked:
		return r.AccessState == StateBlocked
	case FilterQuarantined:
		return r.AccessState == StateQuarantined
	case FilterAllowed:
		return r.AccessState == StateAllowed
	case FilterExempt:
		return r.Decision.Exempt
	}
	return false
}

// DeviceQuery selects device records.
type DeviceQuery struct {
	Filter DeviceFilter
}

// DeviceDetail is one device with its MDM record, owned entries,
// notification history and journal.
type DeviceDetail struct {
	Record  DeviceRecord   `json:"record"`
	MDM     *MDMDevice     `json:"mdm,omitempty"`
	Owned   []OwnedEntry   `json:"owned,omitempty"`
	Journal []JournalEntry `json:"journal,omitempty"`
}

// SyncRequest asks for a run.
type SyncRequest struct {
	Kind    RunKind `json:"kind"`
	Trigger Trigger `json:"trigger"`
	DryRun  bool    `json:"dry_run"`
	// Approve applies a plan the brake would hold (easgate sync --yes).
	Approve bool `json:"approve"`
	// Actor is who asked: "easgate" for the scheduler, else the OS user.
	Actor string `json:"actor"`
	// PlanID, when set, applies the held plan with this ID instead of
	// observing and planning afresh (Approve sets it).
	PlanID string `json:"plan_id,omitempty"`
}

// RunReport is a finished run with the plan it computed.
type RunReport struct {
	Run  Run   `json:"run"`
	Plan *Plan `json:"plan,omitempty"`
}

// Health is the state of the connection to one remote system.
type Health struct {
	Name     string    `json:"name"`
	OK       bool      `json:"ok"`
	InUse    bool      `json:"in_use"`
	LastCall time.Time `json:"last_call"`
	Error    string    `json:"error,omitempty"`
	// CoolDownUntil is set for a failed Exchange server skipped until then.
	CoolDownUntil time.Time `json:"cool_down_until"`
}

// Status is the engine's overview.
type Status struct {
	Counts   Counts    `json:"counts"`
	LastRun  *Run      `json:"last_run,omitempty"`
	Running  *Progress `json:"running,omitempty"`
	Exchange []Health  `json:"exchange"`
	Intune   Health    `json:"intune"`
	Policy   string    `json:"policy"` // the policy in one line
	// HeldPlan summarises the plan the brake holds; RunDetail of its ID
	// returns it whole.
	HeldPlan  *PlanSummary `json:"held_plan,omitempty"`
	NextFull  time.Time    `json:"next_full"`
	NextQuick time.Time    `json:"next_quick"`
	Warnings  []string     `json:"warnings,omitempty"`
	ReadOnly  bool         `json:"read_only"`
	// Pending is how many unmerged in-scope devices still await a
	// notification (never sent, or due for a resend).
	Pending int `json:"notifications_pending"`
}

// Progress is a running run's progress.
type Progress struct {
	Run   Run    `json:"run"`
	Phase string `json:"phase"`
	Done  int    `json:"done"`
	Total int    `json:"total"` // 0 when unknown
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	EventRunStarted  EventKind = "run-started"
	EventPhase       EventKind = "phase"    // a phase started; Progress.Phase names it
	EventProgress    EventKind = "progress" // counts within a phase
	EventRunFinished EventKind = "run-finished"
	EventState       EventKind = "state" // stored state changed (devices, links, held plan)
	EventLog         EventKind = "log"
)

// Event is something that happened in the engine.
type Event struct {
	Kind     EventKind `json:"kind"`
	Time     time.Time `json:"time"`
	Progress *Progress `json:"progress,omitempty"`
	Run      *Run      `json:"run,omitempty"`
	Level    string    `json:"level,omitempty"` // for EventLog
	Message  string    `json:"message,omitempty"`
}
