package org

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Exchange's DeviceAccessState values.
const (
	StateAllowed         = "Allowed"
	StateBlocked         = "Blocked"
	StateQuarantined     = "Quarantined"
	StateDeviceDiscovery = "DeviceDiscovery"
)

// Exchange's DeviceAccessStateReason values the simulator produces.
const (
	ReasonGlobal     = "Global"
	ReasonIndividual = "Individual"
	ReasonDeviceRule = "DeviceRule"
	ReasonPolicy     = "Policy"
)

// Exchange's MobileClientType values.
const (
	ClientEAS     = "EAS"
	ClientOutlook = "Outlook"
)

// MaxPartnerships is Exchange's default EasMaxDevices: partnerships per mailbox.
const MaxPartnerships = 100

// MaxDeviceIDLen is the longest device ID Exchange stores.
const MaxDeviceIDLen = 32

// Org is a simulated organisation. Hold Mu while reading or changing any
// field or anything reachable from one; the simulators do.
type Org struct {
	Mu sync.RWMutex

	Domain   string
	TenantID string

	// Exchange organisation ActiveSync settings.
	DefaultAccessLevel  string // Allow | Block | Quarantine
	AdminMailRecipients []string
	UserMailInsert      string
	Rules               []Rule

	Users   []*User
	Managed []*ManagedDevice
	Groups  []*Group

	byUPN     map[string]*User
	byAddr    map[string]*User // UPN, primary SMTP and proxy addresses, lower-cased
	byID      map[string]*User
	managedID map[string]*ManagedDevice
	groupID   map[string]*Group
}

// Rule is an Exchange ActiveSync device access rule.
type Rule struct {
	Characteristic string // DeviceType | DeviceModel | DeviceOS | UserAgent
	QueryString    string
	AccessLevel    string // Allow | Block | Quarantine
}

// Name is the rule's Exchange identity.
func (r Rule) Name() string { return r.QueryString + " (" + r.Characteristic + ")" }

// User is a person with an Entra identity and an Exchange mailbox.
type User struct {
	ID             string // Entra object ID
	DisplayName    string
	UPN            string
	PrimarySMTP    string
	ProxyAddresses []string // "SMTP:primary", "smtp:alias"
	SamAccountName string
	OU             string // e.g. "contoso.com/Users"

	// Exchange CAS mailbox lists.
	Allowed []string
	Blocked []string

	Partnerships []*Partnership
}

// DistinguishedName is the user's AD distinguished name.
func (u *User) DistinguishedName(domain string) string {
	dc := "DC=" + strings.ReplaceAll(domain, ".", ",DC=")
	return "CN=" + u.DisplayName + ",OU=Users," + dc
}

// Partnership is an Exchange ActiveSync device partnership of a mailbox.
type Partnership struct {
	DeviceID     string
	DeviceType   string
	DeviceModel  string
	DeviceOS     string
	UserAgent    string
	FriendlyName string
	ClientType   string // EAS | Outlook
	FirstSync    time.Time
	LastSync     time.Time
	WhenChanged  time.Time
	// PolicyNotMet models a device that does not meet its ActiveSync
	// mailbox policy; Exchange blocks it before anything else.
	PolicyNotMet bool
	// Wipe state, set by Clear-MobileDevice.
	WipeRequested   time.Time
	WipeAccountOnly bool
}

// ManagedDevice is an Intune managed device.
type ManagedDevice struct {
	ID                  string
	UserID              string
	UserPrincipalName   string
	EmailAddress        string
	DeviceName          string
	OperatingSystem     string
	OSVersion           string
	Model               string
	Manufacturer        string
	EASDeviceID         string // "" when the platform never reports it
	EASActivated        bool
	ComplianceState     string // Graph spelling
	ManagementAgent     string // Graph spelling
	ExchangeAccessState string // Graph spelling
	EnrolledDateTime    time.Time
	LastSyncDateTime    time.Time
}

// Group is an Entra security group; members are user or group IDs.
type Group struct {
	ID          string
	DisplayName string
	Members     []string
}

// New returns an empty organisation.
func New(domain, tenantID string) *Org {
	return &Org{
		Domain:             domain,
		TenantID:           tenantID,
		DefaultAccessLevel: "Allow",
		byUPN:              map[string]*User{},
		byAddr:             map[string]*User{},
		byID:               map[string]*User{},
		managedID:          map[string]*ManagedDevice{},
		groupID:            map[string]*Group{},
	}
}

// AddUser adds a user. Mu must be held.
func (o *Org) AddUser(u *User) {
	o.Users = append(o.Users, u)
	o.byUPN[strings.ToLower(u.UPN)] = u
	o.byID[u.ID] = u
	for _, a := range u.Addresses() {
		if _, taken := o.byAddr[a]; !taken {
			o.byAddr[a] = u
		}
	}
}

// Addresses returns the user's UPN, primary SMTP address and proxy SMTP
// addresses, lower-cased and without their "smtp:" prefix.
func (u *User) Addresses() []string {
	out := []string{strings.ToLower(u.UPN), strings.ToLower(u.PrimarySMTP)}
	for _, p := range u.ProxyAddresses {
		if len(p) > 5 && strings.EqualFold(p[:5], "smtp:") {
			out = append(out, strings.ToLower(p[5:]))
		}
	}
	return out
}

// AddManaged adds an Intune managed device. Mu must be held.
func (o *Org) AddManaged(d *ManagedDevice) {
	o.Managed = append(o.Managed, d)
	o.managedID[d.ID] = d
}

// AddGroup adds an Entra group. Mu must be held.
func (o *Org) AddGroup(g *Group) {
	o.Groups = append(o.Groups, g)
	o.groupID[g.ID] = g
}

// UserByUPN returns the user with the UPN (any case), or nil. Mu must be held.
func (o *Org) UserByUPN(upn string) *User { return o.byUPN[strings.ToLower(upn)] }

// UserByID returns the user with the Entra object ID, or nil. Mu must be held.
func (o *Org) UserByID(id string) *User { return o.byID[id] }

// UserByAddress returns the user whose UPN, primary SMTP address or any proxy
// address is addr (any case), or nil. Mu must be held.
func (o *Org) UserByAddress(addr string) *User {
	if u := o.UserByUPN(addr); u != nil {
		return u
	}
	return o.byAddr[strings.ToLower(addr)]
}

// ManagedByID returns the managed device with the ID, or nil. Mu must be held.
func (o *Org) ManagedByID(id string) *ManagedDevice { return o.managedID[id] }

// GroupByID returns the group with the ID, or nil. Mu must be held.
func (o *Org) GroupByID(id string) *Group { return o.groupID[id] }

// TransitiveUsers returns the users in a group and every group nested in it,
// each once, in membership order. Mu must be held.
func (o *Org) TransitiveUsers(groupID string) []*User {
	var out []*User
	seenUser := map[string]bool{}
	seenGroup := map[string]bool{}
	var walk func(id string)
	walk = func(id string) {
		if seenGroup[id] {
			return
		}
		seenGroup[id] = true
		g := o.groupID[id]
		if g == nil {
			return
		}
		for _, m := range g.Members {
			if u := o.byID[m]; u != nil {
				if !seenUser[m] {
					seenUser[m] = true
					out = append(out, u)
				}
				continue
			}
			walk(m)
		}
	}
	walk(groupID)
	return out
}

// Partnership returns the user's partnership with the device ID (any case),
// or nil. Mu must be held.
func (u *User) Partnership(deviceID string) *Partnership {
	for _, p := range u.Partnerships {
		if strings.EqualFold(p.DeviceID, deviceID) {
			return p
		}
	}
	return nil
}

// AccessOf is Exchange's decision for a partnership, first match wins:
// mailbox policy not met, the mailbox's blocked list, its allowed list, a
// blocking rule, a quarantining rule, an allowing rule, the org default.
// Mu must be held.
func (o *Org) AccessOf(u *User, p *Partnership) (state, reason string) {
	if p.PolicyNotMet {
		return StateBlocked, ReasonPolicy
	}
	if containsFold(u.Blocked, p.DeviceID) {
		return StateBlocked, ReasonIndividual
	}
	if containsFold(u.Allowed, p.DeviceID) {
		return StateAllowed, ReasonIndividual
	}
	for _, level := range []string{"Block", "Quarantine", "Allow"} {
		for _, r := range o.Rules {
			if r.AccessLevel == level && r.QueryString == characteristic(p, r.Characteristic) {
				return levelState(level), ReasonDeviceRule
			}
		}
	}
	return levelState(o.DefaultAccessLevel), ReasonGlobal
}

func characteristic(p *Partnership, name string) string {
	switch name {
	case "DeviceType":
		return p.DeviceType
	case "DeviceModel":
		return p.DeviceModel
	case "DeviceOS":
		return p.DeviceOS
	case "UserAgent":
		return p.UserAgent
	}
	return ""
}

func levelState(level string) string {
	switch level {
	case "Block":
		return StateBlocked
	case "Quarantine":
		return StateQuarantined
	}
	return StateAllowed
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// ListChange is a Set-CASMailbox @{Add=…;Remove=…} on one list.
type ListChange struct {
	Add    []string
	Remove []string
}

// ChangeLists applies Set-CASMailbox -ActiveSyncAllowedDeviceIDs and
// -ActiveSyncBlockedDeviceIDs multivalued edits to a mailbox, as Exchange
// does: adding an ID already present and removing an absent one are no-ops.
// Mu must be held (for writing).
func (o *Org) ChangeLists(upn string, allowed, blocked ListChange) error {
	u := o.UserByAddress(upn)
	if u == nil {
		return fmt.Errorf("The operation couldn't be performed because object '%s' couldn't be found on '%s'.", upn, "DC01."+o.Domain)
	}
	for _, id := range append(append(append([]string{}, allowed.Add...), blocked.Add...), append(allowed.Remove, blocked.Remove...)...) {
		if len(id) > MaxDeviceIDLen || id == "" {
			return fmt.Errorf("The length of the property is too long. The maximum length is %d and the length of the value provided is %d.", MaxDeviceIDLen, len(id))
		}
	}
	u.Allowed = edit(u.Allowed, allowed)
	u.Blocked = edit(u.Blocked, blocked)
	return nil
}

func edit(list []string, c ListChange) []string {
	for _, id := range c.Remove {
		list = slices.DeleteFunc(list, func(x string) bool { return strings.EqualFold(x, id) })
	}
	for _, id := range c.Add {
		if !containsFold(list, id) {
			list = append(list, id)
		}
	}
	return list
}

// Identity is the partnership's Exchange identity, as Get-MobileDevice shows it.
func (o *Org) Identity(u *User, p *Partnership) string {
	return o.Domain + "/Users/" + u.DisplayName + "/ExchangeActiveSyncDevices/" + p.DeviceType + "§" + p.DeviceID
}
