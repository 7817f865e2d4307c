package engine

import (
	"strings"
	"time"
)

// AccessState is Exchange's DeviceAccessState of a partnership as observed.
// Values Exchange adds in later builds pass through as their string.
type AccessState string

// The DeviceAccessState values Exchange documents.
const (
	StateUnknown         AccessState = "Unknown"
	StateAllowed         AccessState = "Allowed"
	StateBlocked         AccessState = "Blocked"
	StateQuarantined     AccessState = "Quarantined"
	StateDeviceDiscovery AccessState = "DeviceDiscovery"
)

// Access is what easgate wants Exchange to do with a device.
type Access string

// The decisions the planner can make. AccessNone means easgate holds no list
// entry for the device, so Exchange's rules and org default decide.
const (
	AccessNone       Access = "none"
	AccessAllow      Access = "allow"
	AccessBlock      Access = "block"
	AccessQuarantine Access = "quarantine"
)

// Compliance is Intune's complianceState, in Graph's spelling. Values Graph
// adds later pass through as their string.
type Compliance string

// The complianceState values Graph documents.
const (
	ComplianceUnknown       Compliance = "unknown"
	ComplianceCompliant     Compliance = "compliant"
	ComplianceNoncompliant  Compliance = "noncompliant"
	ComplianceConflict      Compliance = "conflict"
	ComplianceError         Compliance = "error"
	ComplianceInGracePeriod Compliance = "inGracePeriod"
	ComplianceConfigManager Compliance = "configManager"
)

// Compliant reports whether Intune vouches for the device: compliant, or
// noncompliant but still inside Intune's own grace period.
func (c Compliance) Compliant() bool {
	return c == ComplianceCompliant || c == ComplianceInGracePeriod
}

// List names one of a mailbox's two ActiveSync device lists.
type List string

// The per-mailbox lists (Set-CASMailbox ActiveSyncAllowedDeviceIDs and
// ActiveSyncBlockedDeviceIDs).
const (
	ListAllowed List = "allowed"
	ListBlocked List = "blocked"
)

// Op is what a change does to a list.
type Op string

// The two list operations; Set-CASMailbox takes them as @{Add=…;Remove=…}.
const (
	OpAdd    Op = "add"
	OpRemove Op = "remove"
)

// DeviceKey identifies an EAS partnership: the mailbox's UPN and the device
// ID, both lower-cased. Exchange compares device IDs case-insensitively.
type DeviceKey string

// KeyOf returns the DeviceKey of a mailbox and device ID.
func KeyOf(mailbox, deviceID string) DeviceKey {
	if !isASCII(mailbox) || !isASCII(deviceID) {
		return DeviceKey(strings.ToLower(mailbox) + "/" + strings.ToLower(deviceID))
	}
	// Keys are made for every partnership several times a run: build
	// the lower-cased key in one allocation rather than three.
	var b strings.Builder
	b.Grow(len(mailbox) + 1 + len(deviceID))
	writeLowerASCII(&b, mailbox)
	b.WriteByte('/')
	writeLowerASCII(&b, deviceID)
	return DeviceKey(b.String())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func writeLowerASCII(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// Split returns the mailbox and device ID parts of the key.
func (k DeviceKey) Split() (mailbox, deviceID string) {
	i := strings.LastIndexByte(string(k), '/')
	if i < 0 {
		return "", string(k)
	}
	return string(k[:i]), string(k[i+1:])
}

// EASDevice is an Exchange ActiveSync device partnership (an EAS record), as
// Get-MobileDevice reports it.
type EASDevice struct {
	Mailbox      string      `json:"mailbox"`
	PrimarySMTP  string      `json:"primary_smtp"`
	Identity     string      `json:"identity"`
	DeviceID     string      `json:"device_id"`
	DeviceType   string      `json:"device_type"`
	DeviceModel  string      `json:"device_model"`
	DeviceOS     string      `json:"device_os"`
	UserAgent    string      `json:"user_agent"`
	ClientType   string      `json:"client_type"`
	AccessState  AccessState `json:"access_state"`
	AccessReason string      `json:"access_reason"`
	FirstSync    time.Time   `json:"first_sync"`
	LastSync     time.Time   `json:"last_sync"`
	WhenChanged  time.Time   `json:"when_changed"`
}

// Key returns the device's DeviceKey.
func (d *EASDevice) Key() DeviceKey { return KeyOf(d.Mailbox, d.DeviceID) }

// IsEAS reports whether EAS allow and block lists govern the partnership.
// Outlook REST clients appear in Get-MobileDevice too, but the lists do not
// apply to them.
func (d *EASDevice) IsEAS() bool {
	return d.ClientType == "" || strings.EqualFold(d.ClientType, "EAS")
}

// Mailbox is a CAS mailbox that has device partnerships, with its two lists.
type Mailbox struct {
	UPN         string   `json:"upn"`
	PrimarySMTP string   `json:"primary_smtp"`
	Addresses   []string `json:"addresses,omitempty"` // proxy SMTP addresses, without the smtp: prefix
	Allowed     []string `json:"allowed"`
	Blocked     []string `json:"blocked"`
}

// OrgSettings are the organisation's ActiveSync settings.
type OrgSettings struct {
	DefaultAccessLevel  string   `json:"default_access_level"` // Allow | Block | Quarantine
	AdminMailRecipients []string `json:"admin_mail_recipients,omitempty"`
	UserMailInsert      string   `json:"user_mail_insert,omitempty"`
}

// DeviceAccessRule is an Exchange ActiveSync device access rule. Rules match
// their characteristic exactly; Exchange names them "<QueryString> (<Characteristic>)".
type DeviceAccessRule struct {
	Characteristic string `json:"characteristic"` // DeviceType | DeviceModel | DeviceOS | UserAgent
	QueryString    string `json:"query_string"`
	AccessLevel    string `json:"access_level"` // Allow | Block | Quarantine
}

// Name returns the rule's Exchange identity.
func (r DeviceAccessRule) Name() string {
	return r.QueryString + " (" + r.Characteristic + ")"
}

// ExchangeInventory is what one read of Exchange returned.
type ExchangeInventory struct {
	Server    string             `json:"server"`
	Quick     bool               `json:"quick"` // only devices first synced since Since, and their mailboxes
	Since     time.Time          `json:"since"`
	Org       OrgSettings        `json:"org"`
	Rules     []DeviceAccessRule `json:"rules"`
	Mailboxes []Mailbox          `json:"mailboxes"`
	Devices   []EASDevice        `json:"devices"`
	// Problems lists what could not be read (a malformed line, a failed
	// cmdlet). Any problem makes the inventory incomplete: nothing is
	// blocked on the strength of it.
	Problems []string `json:"problems,omitempty"`
}

// Complete reports whether the inventory can be trusted for blocking.
func (inv *ExchangeInventory) Complete() bool { return len(inv.Problems) == 0 }

// MDMDevice is an Intune managed device (an MDM record), mapped from Graph.
type MDMDevice struct {
	ID                  string     `json:"id"`
	UserID              string     `json:"user_id,omitempty"`
	UserPrincipalName   string     `json:"user_principal_name"`
	Email               string     `json:"email"`
	DeviceName          string     `json:"device_name"`
	OperatingSystem     string     `json:"operating_system"`
	OSVersion           string     `json:"os_version"`
	Model               string     `json:"model"`
	Manufacturer        string     `json:"manufacturer"`
	EASDeviceID         string     `json:"eas_device_id"` // "" when the device never reported one
	EASActivated        bool       `json:"eas_activated"`
	Compliance          Compliance `json:"compliance"`
	ManagementAgent     string     `json:"management_agent"`
	ExchangeAccessState string     `json:"exchange_access_state"`
	Enrolled            time.Time  `json:"enrolled"`
	LastSync            time.Time  `json:"last_sync"`
}

// MDMInventory is what one read of Intune returned.
type MDMInventory struct {
	Quick   bool        `json:"quick"` // only devices changed or enrolled since Since
	Since   time.Time   `json:"since"`
	Devices []MDMDevice `json:"devices"`
	// Problems lists what could not be read; any problem makes the inventory
	// incomplete.
	Problems []string `json:"problems,omitempty"`
}

// Complete reports whether the inventory can be trusted for blocking.
func (inv *MDMInventory) Complete() bool { return len(inv.Problems) == 0 }

// DirectoryUser is an Entra user, as a scope group's transitive members list it.
type DirectoryUser struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"user_principal_name"`
	Mail              string   `json:"mail"`
	ProxyAddresses    []string `json:"proxy_addresses,omitempty"` // as Graph returns them, e.g. "smtp:anna@contoso.com"
}

// LinkKind says how an EAS record was merged with an MDM record.
type LinkKind string

// Link kinds.
const (
	LinkEASID  LinkKind = "eas-id" // Intune reported the same EAS device ID
	LinkManual LinkKind = "manual" // an admin linked the two
)

// Link is a manual merge an admin made between an EAS record and an MDM record.
type Link struct {
	Device  DeviceKey `json:"device"`
	MDMID   string    `json:"mdm_id"`
	Kind    LinkKind  `json:"kind"`
	Created time.Time `json:"created"`
	By      string    `json:"by"`
}

// OwnedEntry records a list entry easgate added; easgate only ever removes
// entries it owns.
type OwnedEntry struct {
	Mailbox  string    `json:"mailbox"`
	DeviceID string    `json:"device_id"`
	List     List      `json:"list"`
	Added    time.Time `json:"added"`
	RunID    string    `json:"run_id"`
	// Grandfathered marks an allow entry made so that switching the org's
	// DefaultAccessLevel took mail from no device easgate does not block.
	Grandfathered bool `json:"grandfathered,omitempty"`
}

// OwnedKey identifies an owned list entry.
type OwnedKey string

// OwnedKeyOf returns the key of a list entry.
func OwnedKeyOf(mailbox string, list List, deviceID string) OwnedKey {
	return OwnedKey(strings.ToLower(mailbox) + "|" + string(list) + "|" + strings.ToLower(deviceID))
}

// Key returns the entry's OwnedKey.
func (e OwnedEntry) Key() OwnedKey { return OwnedKeyOf(e.Mailbox, e.List, e.DeviceID) }

// NotifyState is the notification history of one device.
type NotifyState struct {
	FirstSent time.Time `json:"first_sent"`
	LastSent  time.Time `json:"last_sent"`
	Count     int       `json:"count"`
	LastError string    `json:"last_error,omitempty"`
	LastTried time.Time `json:"last_tried"`
}
