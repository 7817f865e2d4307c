package engine

import "time"

// Meta is the small, whole-organisation part of the engine's state.
type Meta struct {
	Org   OrgSettings        `json:"org"`
	Rules []DeviceAccessRule `json:"rules"`
	// LastFull and LastQuick are when the last complete inventory of each
	// kind started; a quick sync reads what changed since the later one.
	LastFull  time.Time `json:"last_full"`
	LastQuick time.Time `json:"last_quick"`
	// Scope is the resolved include/exclude groups; nil means every mailbox.
	Scope *Scope `json:"scope,omitempty"`
	// MDMCount is how many MDM records the last complete Intune inventory
	// held; a sudden drop to zero brakes the next plan.
	MDMCount int `json:"mdm_count"`
	// Servers is the Exchange server list last discovered or used.
	Servers []string `json:"servers,omitempty"`
	// Removals are when easgate removed partnerships, per lower-cased
	// mailbox, over the last 30 days: Exchange limits removals per month.
	Removals map[string][]time.Time `json:"removals,omitempty"`
}

// RecentRemovals counts the removals of the 30 days before now per mailbox.
func (m *Meta) RecentRemovals(now time.Time) map[string]int {
	out := map[string]int{}
	for mb, ts := range m.Removals {
		for _, t := range ts {
			if now.Sub(t) < 30*24*time.Hour {
				out[mb]++
			}
		}
	}
	return out
}

// Scope is the set of users the policy applies to, resolved from groups.
type Scope struct {
	All      bool            `json:"all"` // no include groups: every mailbox
	Include  []DirectoryUser `json:"include,omitempty"`
	Exclude  []DirectoryUser `json:"exclude,omitempty"`
	Resolved time.Time       `json:"resolved"`
}

// State is everything the engine remembers. A State handed out by the engine
// is never modified afterwards; the engine builds a new one per change.
//
// The MDM records of the last Intune inventory stay in the store (see
// Store.MDMDevices), where the runs that need them read them: holding
// 150,000 of them next to the device records, which already carry each
// merge's MDM ID and complianceState, would cost a large organisation some
// 90 MB between runs and twice that while a run builds the next state.
type State struct {
	Serial    uint64                     `json:"serial"`
	Meta      Meta                       `json:"meta"`
	Mailboxes map[string]Mailbox         `json:"mailboxes"` // by lower-cased UPN
	Records   map[DeviceKey]DeviceRecord `json:"records"`
	MDMStored int                        `json:"mdm_stored"` // how many MDM records the store holds
	Links     map[DeviceKey]Link         `json:"links"`
	Owned     map[OwnedKey]OwnedEntry    `json:"owned"`
	Overrides map[DeviceKey]Override     `json:"overrides"`
	HeldPlan  *Plan                      `json:"held_plan,omitempty"`
}

// Override is an admin's allow or block of one device by hand; it beats the
// policy until it expires.
type Override struct {
	Device  DeviceKey `json:"device"`
	Access  Access    `json:"access"` // allow | block
	Until   time.Time `json:"until"`  // zero: until cleared
	Note    string    `json:"note"`
	By      string    `json:"by"`
	Created time.Time `json:"created"`
}

// Active reports whether the override still holds at now.
func (o Override) Active(now time.Time) bool {
	return o.Until.IsZero() || now.Before(o.Until)
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Mailboxes: map[string]Mailbox{},
		Records:   map[DeviceKey]DeviceRecord{},
		Links:     map[DeviceKey]Link{},
		Owned:     map[OwnedKey]OwnedEntry{},
		Overrides: map[DeviceKey]Override{},
	}
}

// Puts are the entries a commit writes to one of the state's maps: Items,
// then the values Keys have in From (or point to in Refs). A run names the changed keys of its
// next state rather than copying them out: after a large first sync that
// is 150,000 device records of half a kilobyte each, held twice for
// nothing while the store encodes them.
type Puts[K comparable, V any] struct {
	Items []V
	Keys  []K
	From  map[K]V
	Refs  map[K]*V // in place of From
}

// Len returns how many entries p writes.
func (p *Puts[K, V]) Len() int { return len(p.Items) + len(p.Keys) }

// Add appends v to the items.
func (p *Puts[K, V]) Add(v V) { p.Items = append(p.Items, v) }

// All yields each entry, Items first. A yielded pointer is valid until
// the next one: the values of Keys pass through one variable.
func (p *Puts[K, V]) All(yield func(*V) bool) {
	for i := range p.Items {
		if !yield(&p.Items[i]) {
			return
		}
	}
	var v, none V
	for _, k := range p.Keys {
		switch r := p.Refs[k]; {
		case r != nil:
			v = *r
		case p.Refs != nil:
			v = none
		default:
			v = p.From[k]
		}
		if !yield(&v) {
			return
		}
	}
}

// Values returns the entries as one slice.
func (p *Puts[K, V]) Values() []V {
	out := make([]V, 0, p.Len())
	for v := range p.All {
		out = append(out, *v)
	}
	return out
}

// Commit is a change to the stored state, applied atomically. Expect is the
// serial the change was computed from.
type Commit struct {
	Expect uint64

	Meta *Meta // nil: unchanged

	PutRecords    Puts[DeviceKey, DeviceRecord]
	DeleteRecords []DeviceKey
	PutMDM        Puts[string, MDMDevice]
	DeleteMDM     []string
	// ReplaceMDM makes PutMDM the whole set, as a full inventory reads it,
	// in key order: the store deletes the MDM records PutMDM lacks (which
	// makes DeleteMDM moot) and writes only the ones that differ from what
	// it holds.
	ReplaceMDM      bool
	PutMailboxes    Puts[string, Mailbox]
	DeleteMailbox   []string // lower-cased UPNs
	PutLinks        Puts[DeviceKey, Link]
	DeleteLinks     []DeviceKey
	PutOwned        Puts[OwnedKey, OwnedEntry]
	DeleteOwned     []OwnedKey
	PutOverrides    []Override
	DeleteOverrides []DeviceKey

	// SetHeldPlan replaces the held plan with HeldPlan (nil clears it).
	SetHeldPlan bool
	HeldPlan    *Plan

	// Run, if set, is saved in the same transaction.
	Run *Run
	// Journal entries, if any, are appended in the same transaction.
	Journal []JournalEntry
}

// Empty reports whether the commit changes nothing.
func (c *Commit) Empty() bool {
	return c.Meta == nil && c.PutRecords.Len() == 0 && len(c.DeleteRecords) == 0 &&
		c.PutMDM.Len() == 0 && len(c.DeleteMDM) == 0 && !c.ReplaceMDM && c.PutMailboxes.Len() == 0 &&
		len(c.DeleteMailbox) == 0 && c.PutLinks.Len() == 0 && len(c.DeleteLinks) == 0 &&
		c.PutOwned.Len() == 0 && len(c.DeleteOwned) == 0 && len(c.PutOverrides) == 0 && len(c.DeleteOverrides) == 0 &&
		!c.SetHeldPlan && c.Run == nil &&
		len(c.Journal) == 0
}
