package engine

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// commitRun saves what a run observed and did, with its run record, in one
// store transaction, and publishes the new state.
func (e *Engine) commitRun(ctx context.Context, rc *run, p *pending) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	cur := e.current()
	r := rc.r
	next := e.nextState(cur, p.world, p.out, p.applied, r.Started, r.Kind, !p.approved)
	stored := recordedOwned(p.applied)
	if a := p.applied; a != nil {
		// The next state holds what the results said; a large run's
		// results and owned entries need not be held while the store
		// encodes and writes.
		a.results, a.owned, a.disowned, a.unrecorded = nil, nil, nil, nil
	}
	if p.approved {
		next.Meta = cur.Meta // nothing was observed: the watermarks stay
		next.HeldPlan = nil
	}
	switch {
	case p.held != nil:
		// The held plan is current as long as nothing is committed after
		// the commit that stores it.
		p.held.Serial = cur.Serial + 1
		next.HeldPlan = p.held
	case p.approved:
	case r.Status == StatusSucceeded && r.Kind == RunFull:
		next.HeldPlan = nil // a full run that applied its own plan supersedes a held one
	}
	r.Counts = CountRecords(next.Records, next.MDMStored)
	r.Counts.ChangesPlanned = len(p.out.Plan.Changes)
	if a := p.applied; a != nil {
		r.Counts.ChangesApplied, r.Counts.ChangesFailed, r.Counts.NotificationsSent = a.applied, a.failed, a.sent
	}
	r.Finished = e.now()
	c := diff(cur, next, stored)
	if !p.approved {
		c.PutMDM, c.ReplaceMDM = mdmWrites(p.world, r.Kind)
	}
	c.Expect = cur.Serial
	c.Run = r
	serial, err := e.deps.Store.Commit(ctx, c)
	if err != nil {
		return fmt.Errorf("commit run %s: %w", r.ID, err)
	}
	if p.held != nil && serial != p.held.Serial {
		// The store numbered the commit differently: the held plan carries
		// the serial it was stored under, so approving it stays possible.
		p.held.Serial = serial
	}
	next.Serial = serial
	e.publish(next)
	return nil
}

// diff returns the commit that turns the store from cur into next. Each
// part lists the entries that changed, in key order; maps the two states
// share are equal, and only the changed keys are sorted. recorded, if not
// nil, are the owned entries the run already saved on top of cur.
func diff(cur, next *State, recorded *ownedChanges) *Commit {
	c := &Commit{}
	if !metaEqual(&cur.Meta, &next.Meta) {
		m := next.Meta
		c.Meta = &m
	}
	c.PutRecords, c.DeleteRecords = diffMap(cur.Records, next.Records, func(a, b DeviceRecord) bool { return a == b })
	c.PutMailboxes, c.DeleteMailbox = diffMap(cur.Mailboxes, next.Mailboxes, mailboxEqual)
	c.PutLinks, c.DeleteLinks = diffMap(cur.Links, next.Links, func(a, b Link) bool { return a == b })
	if recorded != nil {
		c.PutOwned, c.DeleteOwned = recorded.diff(cur.Owned, next.Owned)
	} else {
		c.PutOwned, c.DeleteOwned = diffMap(cur.Owned, next.Owned, func(a, b OwnedEntry) bool { return a == b })
	}
	overrides, deleted := diffMap(cur.Overrides, next.Overrides, func(a, b Override) bool { return a == b })
	c.PutOverrides, c.DeleteOverrides = overrides.Values(), deleted
	if cur.HeldPlan != next.HeldPlan {
		c.SetHeldPlan, c.HeldPlan = true, next.HeldPlan
	}
	return c
}

// mdmWrites returns what a run saves of the MDM records it observed: a full
// sync's whole inventory, in place of the saved one (the store writes only
// the records that differ), or a quick sync's changed records.
func mdmWrites(w *World, kind RunKind) (Puts[string, MDMDevice], bool) {
	if kind == RunFull {
		return Puts[string, MDMDevice]{Keys: slices.Sorted(maps.Keys(w.MDM)), Refs: w.MDM}, true
	}
	return Puts[string, MDMDevice]{Keys: w.MDMDelta, Refs: w.MDM}, false
}

// ownedChanges are the owned entries a run's applier already saved with
// RecordChanges, before and after each batch: the store holds them before
// the run commits. Diffing against them keeps a first sync's commit from
// writing 135,000 entries a second time, and deletes an entry the applier
// disowned when its RecordChanges failed.
type ownedChanges struct {
	added map[OwnedKey]OwnedEntry
	gone  map[OwnedKey]bool
}

// recordedOwned returns the owned entries a's batches recorded, or nil if
// none. A plan changes each list entry at most once, so a key is added at
// most once, and removed only after it was added.
func recordedOwned(a *applied) *ownedChanges {
	if a == nil || len(a.owned)+len(a.disowned) == 0 {
		return nil
	}
	oc := &ownedChanges{added: make(map[OwnedKey]OwnedEntry, len(a.owned)), gone: make(map[OwnedKey]bool, len(a.disowned))}
	for _, o := range a.owned {
		oc.added[o.Key()] = o
	}
	for _, k := range a.disowned {
		oc.gone[k] = true
	}
	for _, k := range a.unrecorded {
		delete(oc.gone, k)
	}
	return oc
}

// stored returns the entry the store holds for k, on top of cur.
func (oc *ownedChanges) stored(cur map[OwnedKey]OwnedEntry, k OwnedKey) (OwnedEntry, bool) {
	if oc.gone[k] {
		return OwnedEntry{}, false
	}
	if o, ok := oc.added[k]; ok {
		return o, true
	}
	o, ok := cur[k]
	return o, ok
}

// diff is diffMap of the owned entries against what the store holds.
func (oc *ownedChanges) diff(cur, next map[OwnedKey]OwnedEntry) (puts Puts[OwnedKey, OwnedEntry], deletes []OwnedKey) {
	var changed []OwnedKey
	for k, v := range next {
		if old, ok := oc.stored(cur, k); !ok || old != v {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	if len(changed) > 0 {
		puts = Puts[OwnedKey, OwnedEntry]{Keys: changed, From: next}
	}
	gone := func(k OwnedKey) {
		if _, ok := next[k]; ok {
			return
		}
		if _, ok := oc.stored(cur, k); ok {
			deletes = append(deletes, k)
		}
	}
	for k := range cur {
		gone(k)
	}
	for k := range oc.added {
		if _, ok := cur[k]; !ok {
			gone(k)
		}
	}
	slices.Sort(deletes)
	return puts, deletes
}

// diffMap returns next's entries that are new or changed since cur, as
// keys into next, and the keys of cur's entries next lacks, both in key
// order. equal takes its values by value: pointers to the loop's copies
// would escape through the function value and cost an allocation each.
func diffMap[K cmp.Ordered, V any](cur, next map[K]V, equal func(a, b V) bool) (puts Puts[K, V], deletes []K) {
	if sameMap(cur, next) {
		return puts, nil
	}
	var changed []K
	for k, v := range next {
		if old, ok := cur[k]; !ok || !equal(old, v) {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	if len(changed) > 0 {
		puts = Puts[K, V]{Keys: changed, From: next}
	}
	for k := range cur {
		if _, ok := next[k]; !ok {
			deletes = append(deletes, k)
		}
	}
	slices.Sort(deletes)
	return puts, deletes
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap[K comparable, V any](a, b map[K]V) bool {
	if a == nil || b == nil || len(a) != len(b) {
		return false
	}
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func mailboxEqual(a, b Mailbox) bool {
	return a.UPN == b.UPN && a.PrimarySMTP == b.PrimarySMTP && slices.Equal(a.Addresses, b.Addresses) &&
		slices.Equal(a.Allowed, b.Allowed) && slices.Equal(a.Blocked, b.Blocked)
}

func metaEqual(a, b *Meta) bool {
	return a.Org.DefaultAccessLevel == b.Org.DefaultAccessLevel && a.Org.UserMailInsert == b.Org.UserMailInsert &&
		slices.Equal(a.Org.AdminMailRecipients, b.Org.AdminMailRecipients) && slices.Equal(a.Rules, b.Rules) &&
		a.LastFull.Equal(b.LastFull) && a.LastQuick.Equal(b.LastQuick) && a.Scope == b.Scope &&
		a.MDMCount == b.MDMCount && slices.Equal(a.Servers, b.Servers) && removalsEqual(a.Removals, b.Removals)
}

func removalsEqual(a, b map[string][]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.EqualFunc(v, b[k], time.Time.Equal) {
			return false
		}
	}
	return true
}
