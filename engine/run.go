package engine

import "time"

// RunKind is the kind of a sync run.
type RunKind string

// Run kinds: a full sync re-reads everything; a quick sync reads what
// changed since the last run.
const (
	RunFull  RunKind = "full"
	RunQuick RunKind = "quick"
)

// Trigger says what started a run.
type Trigger string

// Triggers.
const (
	TriggerManual   Trigger = "manual"
	TriggerSchedule Trigger = "schedule"
	TriggerStartup  Trigger = "startup"
)

// RunStatus is where a run ended (or that it is still going).
type RunStatus string

// Run statuses. Running is never stored as a final status.
const (
	StatusRunning   RunStatus = "running"
	StatusSucceeded RunStatus = "succeeded"
	StatusFailed    RunStatus = "failed"
	StatusBraked    RunStatus = "braked"
	StatusDryRun    RunStatus = "dry-run"
)

// Phase names, in the order a run goes through them.
const (
	PhaseObserveExchange = "observe-exchange"
	PhaseObserveIntune   = "observe-intune"
	PhasePlan            = "plan"
	PhaseApply           = "apply"
	PhaseNotify          = "notify"
	PhaseSave            = "save"
)

// Counts are a run's numbers, as the run summary JSON reports them.
type Counts struct {
	EASDevices        int `json:"eas_devices"`
	MDMDevices        int `json:"mdm_devices"`
	Merged            int `json:"merged"`
	Unmerged          int `json:"unmerged"`
	Allowed           int `json:"allowed"`
	Blocked           int `json:"blocked"`
	Quarantined       int `json:"quarantined"`
	Exempt            int `json:"exempt"`
	ChangesPlanned    int `json:"changes_planned"`
	ChangesApplied    int `json:"changes_applied"`
	ChangesFailed     int `json:"changes_failed"`
	NotificationsSent int `json:"notifications_sent"`
}

// PhaseTiming is how long one phase of a run took.
type PhaseTiming struct {
	Name     string        `json:"name"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error,omitempty"`
}

// Run is one sync, as recorded in the run history.
type Run struct {
	ID       string        `json:"id"`
	Kind     RunKind       `json:"kind"`
	Trigger  Trigger       `json:"trigger"`
	Actor    string        `json:"actor,omitempty"` // who asked for it; "easgate" for the schedule
	Status   RunStatus     `json:"status"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Error    string        `json:"error"`
	Server   string        `json:"server,omitempty"` // the Exchange server the run used
	Phases   []PhaseTiming `json:"phases,omitempty"`
	Counts   Counts        `json:"counts"`
	// Problems are what made an inventory incomplete, and other non-fatal
	// trouble (a failed notification, a failed change).
	Problems []string `json:"problems,omitempty"`
	// Journal is the range of journal sequence numbers the run wrote; the
	// journal holds every change the run attempted and its result.
	JournalFirst uint64 `json:"journal_first,omitempty"`
	JournalLast  uint64 `json:"journal_last,omitempty"`
	// PlanID names the plan the run computed (held in the store while braked).
	PlanID string `json:"plan_id,omitempty"`
}

// Duration is how long the run took, or has taken so far.
func (r *Run) Duration() time.Duration {
	if r.Finished.IsZero() {
		return 0
	}
	return r.Finished.Sub(r.Started)
}

// JournalKind says what a journal entry records.
type JournalKind string

// Journal entry kinds.
const (
	JournalChange JournalKind = "change" // a list change, before (begin) and after (end)
	JournalNotify JournalKind = "notify" // a notification sent or failed
	JournalAdmin  JournalKind = "admin"  // an admin action: link, approve, resend, override
	JournalRun    JournalKind = "run"    // a run started or ended
	JournalRemove JournalKind = "remove" // a partnership removed, before (begin) and after (end)
)

// JournalEntry is one line of the append-only journal.
type JournalEntry struct {
	Seq     uint64      `json:"seq"`
	Time    time.Time   `json:"time"`
	RunID   string      `json:"run_id,omitempty"`
	Kind    JournalKind `json:"kind"`
	Stage   string      `json:"stage,omitempty"` // "begin" | "end" for changes
	Device  DeviceKey   `json:"device,omitempty"`
	Change  *Change     `json:"change,omitempty"`
	OK      bool        `json:"ok"`
	Error   string      `json:"error,omitempty"`
	Actor   string      `json:"actor"`
	Message string      `json:"message"`
}

// Journal stages of a change.
const (
	StageBegin = "begin"
	StageEnd   = "end"
)
