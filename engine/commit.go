package engine

import (
	"context"
	"fmt"
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
	next := e.nextState(cur, p.world, p.out, p.applied, r.Started, r.Kind)
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
	r.Counts = CountRecords(next.Records, len(next.MDM))
	r.Counts.ChangesPlanned = len(p.out.Plan.Changes)
	if a := p.applied; a != nil {
		r.Counts.ChangesApplied, r.Counts.ChangesFailed, r.Counts.NotificationsSent = a.applied, a.failed, a.sent
	}
	r.Finished = e.now()
	c := diff(cur, next)
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

// diff returns the commit that turns cur into next.
func diff(cur, next *State) *Commit {
	c := &Commit{}
	if !metaEqual(&cur.Meta, &next.Meta) {
		m := next.Meta
		c.Meta = &m
	}
	for _, k := range sortedKeys(next.Records) {
		if old, ok := cur.Records[k]; !ok || old != next.Records[k] {
			c.PutRecords = append(c.PutRecords, next.Records[k])
		}
	}
	for _, k := range sortedKeys(cur.Records) {
		if _, ok := next.Records[k]; !ok {
			c.DeleteRecords = append(c.DeleteRecords, k)
		}
	}
	for _, k := range sortedKeys(next.MDM) {
		if old, ok := cur.MDM[k]; !ok || old != next.MDM[k] {
			c.PutMDM = append(c.PutMDM, next.MDM[k])
		}
	}
	for _, k := range sortedKeys(cur.MDM) {
		if _, ok := next.MDM[k]; !ok {
			c.DeleteMDM = append(c.DeleteMDM, k)
		}
	}
	for _, k := range sortedKeys(next.Mailboxes) {
		if old, ok := cur.Mailboxes[k]; !ok || !mailboxEqual(&old, ptr(next.Mailboxes[k])) {
			c.PutMailboxes = append(c.PutMailboxes, next.Mailboxes[k])
		}
	}
	for _, k := range sortedKeys(cur.Mailboxes) {
		if _, ok := next.Mailboxes[k]; !ok {
			c.DeleteMailbox = append(c.DeleteMailbox, k)
		}
	}
	for _, k := range sortedKeys(next.Links) {
		if old, ok := cur.Links[k]; !ok || old != next.Links[k] {
			c.PutLinks = append(c.PutLinks, next.Links[k])
		}
	}
	for _, k := range sortedKeys(cur.Links) {
		if _, ok := next.Links[k]; !ok {
			c.DeleteLinks = append(c.DeleteLinks, k)
		}
	}
	for _, k := range sortedKeys(next.Owned) {
		if old, ok := cur.Owned[k]; !ok || old != next.Owned[k] {
			c.PutOwned = append(c.PutOwned, next.Owned[k])
		}
	}
	for _, k := range sortedKeys(cur.Owned) {
		if _, ok := next.Owned[k]; !ok {
			c.DeleteOwned = append(c.DeleteOwned, k)
		}
	}
	for _, k := range sortedKeys(next.Overrides) {
		if old, ok := cur.Overrides[k]; !ok || old != next.Overrides[k] {
			c.PutOverrides = append(c.PutOverrides, next.Overrides[k])
		}
	}
	for _, k := range sortedKeys(cur.Overrides) {
		if _, ok := next.Overrides[k]; !ok {
			c.DeleteOverrides = append(c.DeleteOverrides, k)
		}
	}
	if cur.HeldPlan != next.HeldPlan {
		c.SetHeldPlan, c.HeldPlan = true, next.HeldPlan
	}
	return c
}

func mailboxEqual(a, b *Mailbox) bool {
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
