package engine

import "time"

// ReasonCode classifies a decision for filtering and counting; the Reason
// text beside it is what an admin reads.
type ReasonCode string

// Decision reason codes.
const (
	ReasonCompliant      ReasonCode = "compliant"
	ReasonNoncompliant   ReasonCode = "noncompliant"
	ReasonUnmanaged      ReasonCode = "unmanaged"
	ReasonGrace          ReasonCode = "grace-period"
	ReasonException      ReasonCode = "platform-exception"
	ReasonOutOfScope     ReasonCode = "out-of-scope"
	ReasonAdminEntry     ReasonCode = "admin-entry"
	ReasonNotEAS         ReasonCode = "not-eas"
	ReasonLinkConflict   ReasonCode = "link-conflict"
	ReasonAdminOverride  ReasonCode = "admin-override"
	ReasonPolicyDisabled ReasonCode = "policy-disabled"
)

// Decision is the access the policy wants for one device, and why.
type Decision struct {
	Access Access     `json:"access"`
	Exempt bool       `json:"exempt"` // the policy leaves the device alone
	Code   ReasonCode `json:"code"`
	Reason string     `json:"reason"` // in words an admin reads
}

// DeviceRecord is one EAS record as the engine keeps it: the partnership,
// the MDM record merged with it, the decision and its notification history.
type DeviceRecord struct {
	EASDevice
	MDMID string   `json:"mdm_id,omitempty"`
	Link  LinkKind `json:"link,omitempty"`
	// Compliance is the merged MDM record's complianceState.
	Compliance Compliance  `json:"compliance,omitempty"`
	Suggested  string      `json:"suggested,omitempty"` // best MDM candidate for an unmerged record
	Decision   Decision    `json:"decision"`
	Since      time.Time   `json:"since"` // when Decision.Access last changed
	Notify     NotifyState `json:"notify"`
	InScope    bool        `json:"in_scope"`
}

// Merged reports whether the EAS record has an MDM record.
func (r *DeviceRecord) Merged() bool { return r.MDMID != "" }

// Change is one list operation on one mailbox, with the reason for it.
type Change struct {
	Mailbox  string `json:"mailbox"`
	DeviceID string `json:"device_id"`
	List     List   `json:"list"`
	Op       Op     `json:"op"`
	Reason   string `json:"reason"`
	// Orphan marks the removal of easgate's entry for a partnership that no
	// longer exists: it cannot take mail away from anyone.
	Orphan bool `json:"orphan,omitempty"`
	// Grandfather marks an allow entry made before the org's
	// DefaultAccessLevel switches, for a device easgate does not block.
	Grandfather bool `json:"grandfather,omitempty"`
}

// OrgDefaultChange switches Exchange's DefaultAccessLevel
// (manage_org_default), after the grandfathering changes are applied.
type OrgDefaultChange struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// Removal removes a partnership idle longer than remove_idle_after.
type Removal struct {
	Mailbox  string    `json:"mailbox"`
	DeviceID string    `json:"device_id"`
	LastSync time.Time `json:"last_sync"`
	Reason   string    `json:"reason"`
}

// Blocks reports whether the change can take mail away from a device: an
// addition to the blocked list, or a removal from the allowed list.
func (c Change) Blocks() bool {
	if c.Orphan {
		return false
	}
	return (c.List == ListBlocked && c.Op == OpAdd) || (c.List == ListAllowed && c.Op == OpRemove)
}

// ChangeResult is the outcome of one change.
type ChangeResult struct {
	Change
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Transient is true when trying again may succeed (a lost connection, a
	// busy server) rather than a refusal by Exchange.
	Transient bool `json:"transient,omitempty"`
}

// Notification is an enrollment mail to send to the user of an unmerged device.
type Notification struct {
	Device      DeviceKey `json:"device"`
	Mailbox     string    `json:"mailbox"`
	To          string    `json:"to"`
	DeviceID    string    `json:"device_id"`
	DeviceType  string    `json:"device_type"`
	DeviceModel string    `json:"device_model"`
	DeviceOS    string    `json:"device_os"`
	UserAgent   string    `json:"user_agent"`
	FirstSync   time.Time `json:"first_sync"`
	Access      Access    `json:"access"` // what will happen to the device
	Reason      string    `json:"reason"`
	Resend      bool      `json:"resend"`
}

// Brake says why a plan is held.
type Brake struct {
	NewBlocks int    `json:"new_blocks"`
	Limit     int    `json:"limit"`
	Reason    string `json:"reason"`
}

// Plan is everything a run would do, computed before anything is done. It
// records the store serial it was computed from: applying it after the
// store moved on fails with ErrStalePlan.
type Plan struct {
	ID            string         `json:"id"`
	Serial        uint64         `json:"serial"`
	Kind          RunKind        `json:"kind"`
	Computed      time.Time      `json:"computed"`
	Changes       []Change       `json:"changes"`
	Notifications []Notification `json:"notifications"`
	// Withheld are changes that would block but were not planned because an
	// inventory was incomplete.
	Withheld []Change `json:"withheld,omitempty"`
	// OrgDefault, when set, switches the org's DefaultAccessLevel.
	OrgDefault *OrgDefaultChange `json:"org_default,omitempty"`
	// Removals are idle partnerships to remove.
	Removals []Removal `json:"removals,omitempty"`
	// Notes say what the plan held back and why (a deferred org default
	// switch, removals over Exchange's monthly limit).
	Notes  []string `json:"notes,omitempty"`
	Brake  *Brake   `json:"brake,omitempty"`
	Counts Counts   `json:"counts"`
}

// NewBlocks counts the devices the plan can take mail away from: those with
// an addition to a blocked list or a removal from an allowed list.
func (p *Plan) NewBlocks() int {
	seen := map[DeviceKey]bool{}
	for _, c := range p.Changes {
		if c.Blocks() {
			seen[KeyOf(c.Mailbox, c.DeviceID)] = true
		}
	}
	return len(seen)
}

// PlanSummary is a plan without its changes: what the overview, the
// monitoring check and the metrics need, cheap to send on every status read.
type PlanSummary struct {
	ID            string    `json:"id"`
	Serial        uint64    `json:"serial"`
	Kind          RunKind   `json:"kind"`
	Computed      time.Time `json:"computed"`
	Brake         *Brake    `json:"brake,omitempty"`
	Changes       int       `json:"changes"`
	NewBlocks     int       `json:"new_blocks"`
	Notifications int       `json:"notifications"`
	Counts        Counts    `json:"counts"`
}

// Summary summarises the plan.
func (p *Plan) Summary() *PlanSummary {
	return &PlanSummary{ID: p.ID, Serial: p.Serial, Kind: p.Kind, Computed: p.Computed, Brake: p.Brake,
		Changes: len(p.Changes), NewBlocks: p.NewBlocks(), Notifications: len(p.Notifications), Counts: p.Counts}
}
