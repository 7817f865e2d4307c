package engine

import (
	"context"
	"time"
)

// InventoryQuery says how much of Exchange to read. A zero Since reads
// everything; otherwise only partnerships first synced since then, and the
// mailboxes that hold them.
type InventoryQuery struct {
	Since time.Time
}

// ExchangeReader reads Exchange's device partnerships, lists and settings.
type ExchangeReader interface {
	Inventory(ctx context.Context, q InventoryQuery) (*ExchangeInventory, error)
}

// ExchangeWriter changes mailboxes' allow and block lists. It returns one
// result per change, in any order; an error means the call as a whole
// failed and changes without a result are in an unknown state.
type ExchangeWriter interface {
	ApplyChanges(ctx context.Context, changes []Change) ([]ChangeResult, error)
}

// ExchangeAdmin performs the one-off Exchange operations an admin asks for
// and the optional policy features need.
type ExchangeAdmin interface {
	// RemoveDevice removes a partnership (Remove-MobileDevice).
	RemoveDevice(ctx context.Context, mailbox, deviceID string) error
	// WipeDevice requests a remote wipe (Clear-MobileDevice), of the whole
	// device or only the mail account.
	WipeDevice(ctx context.Context, mailbox, deviceID string, accountOnly bool) error
	// SetOrgDefault sets the organisation's DefaultAccessLevel
	// (Allow | Block | Quarantine).
	SetOrgDefault(ctx context.Context, level string) error
	// SetDeviceRule creates a device access rule or changes its access level.
	SetDeviceRule(ctx context.Context, rule DeviceAccessRule) error
	// RemoveDeviceRule removes a device access rule.
	RemoveDeviceRule(ctx context.Context, rule DeviceAccessRule) error
	// DeviceStatistics reads Get-MobileDeviceStatistics of one partnership.
	DeviceStatistics(ctx context.Context, mailbox, deviceID string) (*DeviceStatistics, error)
}

// DeviceStatistics is what Get-MobileDeviceStatistics reports of one
// partnership; Fields keeps every property as text.
type DeviceStatistics struct {
	LastSuccessSync  time.Time         `json:"last_success_sync"`
	LastPolicyUpdate time.Time         `json:"last_policy_update"`
	Status           string            `json:"status"`
	WipeStatus       string            `json:"wipe_status"`
	Fields           map[string]string `json:"fields"`
}

// Digest is the summary mailed to the org's AdminMailRecipients after a run
// that blocked devices.
type Digest struct {
	To      []string       `json:"to"`
	Run     Run            `json:"run"`
	Blocked []DigestDevice `json:"blocked"` // the newly blocked devices, at most DigestMax
	More    int            `json:"more"`    // how many more there were
}

// DigestDevice is one newly blocked device in a digest.
type DigestDevice struct {
	Mailbox     string `json:"mailbox"`
	DeviceID    string `json:"device_id"`
	DeviceModel string `json:"device_model"`
	Reason      string `json:"reason"`
}

// DigestMax is how many devices a digest lists.
const DigestMax = 200

// DigestSender sends the admin digest; a Mailer may implement it.
type DigestSender interface {
	SendDigest(ctx context.Context, d Digest) error
}

// Previewer renders a notification without sending it; a Mailer may
// implement it.
type Previewer interface {
	Preview(n Notification) (MailPreview, error)
}

// MDMQuery says how much of Intune to read. A zero Since reads every managed
// device; otherwise only devices that synced or enrolled since then.
type MDMQuery struct {
	Since time.Time
}

// IntuneReader reads Intune's managed devices and Entra group membership.
type IntuneReader interface {
	ManagedDevices(ctx context.Context, q MDMQuery) (*MDMInventory, error)
	// GroupMembers returns a group's transitive user members. A group that
	// does not exist is an error wrapping ErrGroupNotFound.
	GroupMembers(ctx context.Context, groupID string) ([]DirectoryUser, error)
}

// Mailer sends enrollment notifications.
type Mailer interface {
	Send(ctx context.Context, n Notification) error
}

// CallObserver is told about every call an adapter makes to a remote
// system (a WinRM command, a Graph request, an SMTP send), for metrics.
// System is "exchange", "graph" or "smtp"; op names the operation (a
// script name, a Graph path template, "send"). It must be fast and safe
// for concurrent use.
type CallObserver interface {
	ObserveCall(system, op string, d time.Duration, err error)
}

// Clock tells the time; tests pass a fixed one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Store keeps the engine's state between runs and processes. Commit is a
// compare-and-swap on the serial: it fails with ErrStaleSerial when another
// writer moved it.
type Store interface {
	// Load returns the saved state, with the count of the saved MDM records
	// rather than the records (MDMDevice and MDMDevices read those); an
	// empty store returns an empty State with serial 0.
	Load(ctx context.Context) (*State, error)
	// Commit applies a delta and returns the new serial.
	Commit(ctx context.Context, c *Commit) (uint64, error)
	// MDMDevice returns the saved MDM record with Intune device ID id, and
	// whether there is one.
	MDMDevice(ctx context.Context, id string) (MDMDevice, bool, error)
	// MDMDevices returns every saved MDM record, by Intune device ID.
	MDMDevices(ctx context.Context) (map[string]*MDMDevice, error)
	// RecordChanges durably appends journal entries and the ownership of
	// list entries in one transaction; the applier calls it before and after
	// each batch so that a crash mid-apply leaves a true record.
	RecordChanges(ctx context.Context, entries []JournalEntry, owned []OwnedEntry, disowned []OwnedKey) ([]JournalEntry, error)
	// Journal returns journal entries, newest last.
	Journal(ctx context.Context, q JournalQuery) ([]JournalEntry, error)
	// Runs returns up to limit runs, newest first.
	Runs(ctx context.Context, limit int) ([]Run, error)
	// SaveRun inserts or replaces a run record.
	SaveRun(ctx context.Context, r *Run) error
}

// JournalQuery selects journal entries. Zero fields select everything.
type JournalQuery struct {
	FromSeq uint64 // first sequence number, inclusive
	ToSeq   uint64 // last sequence number, inclusive; 0 = no limit
	RunID   string
	Device  DeviceKey
	Limit   int // the newest Limit entries of the selection; 0 = all
}
