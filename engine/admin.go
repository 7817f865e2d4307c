package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ErrUnavailable is returned for an action the configured adapters cannot do
// (no mailer for a resend, no Exchange connection in a read-only console).
var ErrUnavailable = errors.New("not available with this configuration")

// guard refuses actions in read-only mode and before Start.
func (e *Engine) guard() (*State, error) {
	if e.opt.ReadOnly {
		return nil, ErrReadOnly
	}
	st := e.current()
	if st == nil {
		return nil, ErrClosed
	}
	return st, nil
}

func actorOr(a string) string {
	if strings.TrimSpace(a) == "" {
		return "unknown"
	}
	return a
}

// adminEntry is a journal line for an admin's action.
func (e *Engine) adminEntry(device DeviceKey, actor, format string, args ...any) JournalEntry {
	return JournalEntry{Time: e.now(), Kind: JournalAdmin, Device: device, OK: true, Actor: actorOr(actor),
		Message: fmt.Sprintf(format, args...)}
}

// mutate commits a change made outside a run: edit gets a copy of the
// current state to change (copy the maps it touches first) and the commit
// to fill in; the journal entries go in the same transaction.
func (e *Engine) mutate(ctx context.Context, journal []JournalEntry, edit func(next *State, c *Commit)) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	cur := e.current()
	next := *cur
	c := &Commit{Expect: cur.Serial, Journal: journal}
	edit(&next, c)
	serial, err := e.deps.Store.Commit(context.WithoutCancel(ctx), c)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	next.Serial = serial
	e.publish(&next)
	return nil
}

// worldFrom rebuilds the observed world from the saved state, for actions
// between runs. It is as complete as the admin's view of it. Its MDM is
// nil: reconcile, which plans with it, reads MDM from the store.
func worldFrom(st *State) *World {
	w := &World{
		Org: st.Meta.Org, Rules: st.Meta.Rules, Mailboxes: st.Mailboxes, Scope: st.Meta.Scope,
		EAS: make(map[DeviceKey]EASDevice, len(st.Records)), ExchangeComplete: true, IntuneComplete: true,
	}
	for k, r := range st.Records {
		w.EAS[k] = r.EASDevice
	}
	return w
}

// reconcile plans and applies the changes that bring the named devices in
// line with the policy, now, outside a run: an admin's link, unlink or
// override takes effect at once. The brake does not apply to an action on
// named devices.
func (e *Engine) reconcile(ctx context.Context, keys []DeviceKey, actor string) error {
	if e.deps.ExchangeWriter == nil {
		return nil // a read-only engine records the decision; the next run applies it
	}
	st := e.current()
	w := worldFrom(st)
	mdm, err := e.deps.Store.MDMDevices(ctx)
	if err != nil {
		return fmt.Errorf("read the saved MDM records: %w", err)
	}
	w.MDM = mdm
	out := BuildPlan(PlanInput{
		Now: e.now(), Serial: st.Serial, Kind: RunQuick, Policy: e.opt.Policy, World: w,
		Links: st.Links, Owned: st.Owned, Prev: st.Records, Overrides: st.Overrides, Devices: keys,
	})
	rc := &run{e: e, r: &Run{ID: "admin-" + e.newRunID(e.now())}, actor: actorOr(actor), quiet: true,
		log: e.log.With("action", "reconcile", "actor", actor)}
	var res *applied
	if len(out.Plan.Changes) > 0 {
		res = &applied{notified: map[DeviceKey]NotifyState{}}
		e.change(ctx, rc, out.Plan.Changes, res, nil)
		if res.failed > 0 {
			for _, r := range res.results {
				if !r.OK {
					return fmt.Errorf("%s %s on %s's %s list: %s", r.Op, r.DeviceID, r.Mailbox, r.List, r.Error)
				}
			}
		}
	}
	return e.mutate(ctx, nil, func(next *State, c *Commit) {
		mbs := next.Mailboxes
		if res != nil {
			mbs = appliedLists(st.Mailboxes, res.results, false)
			next.Owned = maps.Clone(next.Owned)
			for _, o := range res.owned {
				next.Owned[o.Key()] = o
				c.PutOwned.Add(o)
			}
			for _, k := range res.disowned {
				delete(next.Owned, k)
				c.DeleteOwned = append(c.DeleteOwned, k)
			}
		}
		next.Mailboxes = mbs
		next.Records = maps.Clone(next.Records)
		for k, r := range out.Records {
			mb, ok := mbs[strings.ToLower(r.Mailbox)]
			if ok {
				r.AccessState, r.AccessReason = ExchangeAccess(w.Org, w.Rules, &mb, &r.EASDevice)
			}
			next.Records[k] = r
			c.PutRecords.Add(r)
			if m, ok := mbs[strings.ToLower(r.Mailbox)]; ok && res != nil {
				c.PutMailboxes.Add(m)
			}
		}
	})
}

// record returns a device record of the current state.
func (e *Engine) record(key DeviceKey) (*State, DeviceRecord, error) {
	st := e.current()
	if st == nil {
		return nil, DeviceRecord{}, ErrClosed
	}
	r, ok := st.Records[key]
	if !ok {
		return st, r, fmt.Errorf("device %s: %w", key, ErrNotFound)
	}
	return st, r, nil
}

// Link merges an EAS record with an MDM record by hand.
func (e *Engine) Link(ctx context.Context, req LinkRequest) error {
	if _, err := e.guard(); err != nil {
		return err
	}
	st, rec, err := e.record(req.Device)
	if err != nil {
		return err
	}
	m, ok, err := e.deps.Store.MDMDevice(ctx, req.MDMID)
	if err != nil {
		return fmt.Errorf("MDM record %s: %w", req.MDMID, err)
	}
	if !ok {
		return fmt.Errorf("MDM record %s: %w", req.MDMID, ErrNotFound)
	}
	for k, l := range st.Links {
		if l.MDMID == req.MDMID && k != req.Device {
			return fmt.Errorf("MDM record %s is already linked to %s: unlink it first", req.MDMID, k)
		}
	}
	l := Link{Device: req.Device, MDMID: req.MDMID, Kind: LinkManual, Created: e.now(), By: actorOr(req.Actor)}
	j := e.adminEntry(req.Device, req.Actor, "linked %s (%s) to MDM record %s (%s, %s)", rec.DeviceID, rec.Mailbox, m.ID, m.DeviceName, m.OperatingSystem)
	if err := e.mutate(ctx, []JournalEntry{j}, func(next *State, c *Commit) {
		next.Links = maps.Clone(next.Links)
		next.Links[req.Device] = l
		c.PutLinks.Add(l)
	}); err != nil {
		return err
	}
	e.log.Info("device linked", "device", string(req.Device), "mdm_id", m.ID, "actor", req.Actor)
	return e.reconcile(ctx, []DeviceKey{req.Device}, req.Actor)
}

// Unlink removes a manual link.
func (e *Engine) Unlink(ctx context.Context, req DeviceRequest) error {
	if _, err := e.guard(); err != nil {
		return err
	}
	st, _, err := e.record(req.Device)
	if err != nil {
		return err
	}
	l, ok := st.Links[req.Device]
	if !ok {
		return fmt.Errorf("device %s has no manual link: %w", req.Device, ErrNotFound)
	}
	j := e.adminEntry(req.Device, req.Actor, "unlinked MDM record %s", l.MDMID)
	if err := e.mutate(ctx, []JournalEntry{j}, func(next *State, c *Commit) {
		next.Links = maps.Clone(next.Links)
		delete(next.Links, req.Device)
		c.DeleteLinks = []DeviceKey{req.Device}
	}); err != nil {
		return err
	}
	return e.reconcile(ctx, []DeviceKey{req.Device}, req.Actor)
}

// Override allows or blocks a device by hand, or clears that.
func (e *Engine) Override(ctx context.Context, req OverrideRequest) error {
	if _, err := e.guard(); err != nil {
		return err
	}
	if _, _, err := e.record(req.Device); err != nil {
		return err
	}
	now := e.now()
	var j JournalEntry
	switch req.Access {
	case AccessAllow, AccessBlock:
		if !req.Until.IsZero() && !req.Until.After(now) {
			return fmt.Errorf("override until %s: that is already past", req.Until.Format(time.RFC3339))
		}
		until := "until cleared"
		if !req.Until.IsZero() {
			until = "until " + req.Until.UTC().Format(time.RFC3339)
		}
		j = e.adminEntry(req.Device, req.Actor, "%s by hand %s: %s", verbPast(req.Access), until, req.Note)
	case AccessNone:
		j = e.adminEntry(req.Device, req.Actor, "override cleared")
	default:
		return fmt.Errorf("override access %q: want allow, block or none", req.Access)
	}
	o := Override{Device: req.Device, Access: req.Access, Until: req.Until, Note: req.Note, By: actorOr(req.Actor), Created: now}
	if err := e.mutate(ctx, []JournalEntry{j}, func(next *State, c *Commit) {
		next.Overrides = maps.Clone(next.Overrides)
		if next.Overrides == nil {
			next.Overrides = map[DeviceKey]Override{}
		}
		if req.Access == AccessNone {
			delete(next.Overrides, req.Device)
			c.DeleteOverrides = []DeviceKey{req.Device}
			return
		}
		next.Overrides[req.Device] = o
		c.PutOverrides = []Override{o}
	}); err != nil {
		return err
	}
	return e.reconcile(ctx, []DeviceKey{req.Device}, req.Actor)
}

// Resend sends the enrollment notification for each device now.
func (e *Engine) Resend(ctx context.Context, req ResendRequest) ([]NotifyResult, error) {
	st, err := e.guard()
	if err != nil {
		return nil, err
	}
	if e.deps.Mailer == nil {
		return nil, fmt.Errorf("resend: no mailer configured: %w", ErrUnavailable)
	}
	var ns []Notification
	for _, k := range req.Devices {
		r, ok := st.Records[k]
		if !ok {
			return nil, fmt.Errorf("device %s: %w", k, ErrNotFound)
		}
		ns = append(ns, notificationFor(&r, r.Notify.Count > 0))
	}
	rc := &run{e: e, r: &Run{ID: "admin-" + e.newRunID(e.now())}, actor: actorOr(req.Actor), quiet: true, log: e.log}
	res := &applied{notified: map[DeviceKey]NotifyState{}}
	e.notify(ctx, rc, ns, st.Records, res)
	out := make([]NotifyResult, len(ns))
	for i, n := range ns {
		s := res.notified[n.Device]
		out[i] = NotifyResult{Device: n.Device, To: n.To, OK: s.LastError == "" && !s.LastSent.IsZero(), Error: s.LastError}
	}
	err = e.mutate(ctx, nil, func(next *State, c *Commit) {
		next.Records = maps.Clone(next.Records)
		for k, s := range res.notified {
			r, ok := next.Records[k]
			if !ok {
				continue
			}
			r.Notify = s
			next.Records[k] = r
			c.PutRecords.Add(r)
		}
	})
	return out, err
}

// Preview renders the notification a device's user would get.
func (e *Engine) Preview(ctx context.Context, device DeviceKey) (*MailPreview, error) {
	_, r, err := e.record(device)
	if err != nil {
		return nil, err
	}
	p, ok := e.deps.Mailer.(Previewer)
	if !ok || e.deps.Mailer == nil {
		return nil, fmt.Errorf("preview: no mailer configured: %w", ErrUnavailable)
	}
	m, err := p.Preview(notificationFor(&r, r.Notify.Count > 0))
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// RemovePartnership removes the device's partnership from Exchange.
func (e *Engine) RemovePartnership(ctx context.Context, req DeviceRequest) error {
	if _, err := e.guard(); err != nil {
		return err
	}
	_, r, err := e.record(req.Device)
	if err != nil {
		return err
	}
	if e.deps.ExchangeAdmin == nil {
		return fmt.Errorf("remove partnership: %w", ErrUnavailable)
	}
	err = e.deps.ExchangeAdmin.RemoveDevice(ctx, r.Mailbox, r.DeviceID)
	j := e.adminEntry(req.Device, req.Actor, "removed the partnership of %s (%s %s) from %s", r.DeviceID, r.DeviceType, r.DeviceModel, r.Mailbox)
	if err != nil {
		j.OK, j.Error, j.Message = false, err.Error(), "removing the partnership of "+r.DeviceID+" failed"
		_, _ = e.deps.Store.RecordChanges(context.WithoutCancel(ctx), []JournalEntry{j}, nil, nil)
		return fmt.Errorf("remove partnership %s: %w", req.Device, err)
	}
	return e.mutate(ctx, []JournalEntry{j}, func(next *State, c *Commit) {
		next.Records = maps.Clone(next.Records)
		delete(next.Records, req.Device)
		c.DeleteRecords = []DeviceKey{req.Device}
	})
}

// Wipe asks Exchange to wipe the device or its mail account.
func (e *Engine) Wipe(ctx context.Context, req WipeRequest) error {
	if _, err := e.guard(); err != nil {
		return err
	}
	_, r, err := e.record(req.Device)
	if err != nil {
		return err
	}
	if e.deps.ExchangeAdmin == nil {
		return fmt.Errorf("wipe: %w", ErrUnavailable)
	}
	what := "a full wipe"
	if req.AccountOnly {
		what = "an account-only wipe"
	}
	err = e.deps.ExchangeAdmin.WipeDevice(ctx, r.Mailbox, r.DeviceID, req.AccountOnly)
	j := e.adminEntry(req.Device, req.Actor, "requested %s of %s (%s %s, %s)", what, r.DeviceID, r.DeviceType, r.DeviceModel, r.Mailbox)
	if err != nil {
		j.OK, j.Error = false, err.Error()
	}
	if _, jerr := e.deps.Store.RecordChanges(context.WithoutCancel(ctx), []JournalEntry{j}, nil, nil); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil {
		return fmt.Errorf("wipe %s: %w", req.Device, err)
	}
	return nil
}

// Statistics reads Exchange's statistics of one partnership, live.
func (e *Engine) Statistics(ctx context.Context, device DeviceKey) (*DeviceStatistics, error) {
	_, r, err := e.record(device)
	if err != nil {
		return nil, err
	}
	if e.deps.ExchangeAdmin == nil {
		return nil, fmt.Errorf("statistics: %w", ErrUnavailable)
	}
	return e.deps.ExchangeAdmin.DeviceStatistics(ctx, r.Mailbox, r.DeviceID)
}

// Approve applies exactly the held plan.
func (e *Engine) Approve(ctx context.Context, req PlanRequest) (*RunReport, error) {
	st, err := e.guard()
	if err != nil {
		return nil, err
	}
	if st.HeldPlan == nil {
		return nil, ErrNoHeldPlan
	}
	if req.PlanID != "" && req.PlanID != st.HeldPlan.ID {
		return nil, fmt.Errorf("plan %s is not the held plan %s: %w", req.PlanID, st.HeldPlan.ID, ErrStalePlan)
	}
	return e.Sync(ctx, SyncRequest{Kind: st.HeldPlan.Kind, Trigger: TriggerManual, Actor: req.Actor, PlanID: st.HeldPlan.ID})
}

// executeApproved applies the held plan as a run of its own.
func (e *Engine) executeApproved(ctx context.Context, req SyncRequest) (*RunReport, error) {
	st := e.current()
	held := st.HeldPlan
	switch {
	case held == nil:
		return nil, ErrNoHeldPlan
	case held.ID != req.PlanID || held.Serial != st.Serial:
		return nil, fmt.Errorf("held plan %s was computed at serial %d, the store is at %d: %w", held.ID, held.Serial, st.Serial, ErrStalePlan)
	}
	start := e.now()
	r := &Run{ID: e.newRunID(start), Kind: held.Kind, Trigger: TriggerManual, Status: StatusRunning, Started: start,
		Actor: req.Actor, PlanID: held.ID}
	rc := &run{e: e, r: r, actor: "easgate", log: e.log.With("run", r.ID, "approved_plan", held.ID)}
	rc.log.Info("applying an approved plan", "actor", req.Actor, "changes", len(held.Changes))
	_, _ = e.deps.Store.RecordChanges(context.WithoutCancel(ctx), []JournalEntry{
		e.adminEntry("", req.Actor, "approved plan %s (%d changes, %d new blocks): %s", held.ID, len(held.Changes), held.NewBlocks(), brakeReason(held)),
	}, nil, nil)
	e.emit(Event{Kind: EventRunStarted, Run: ptr(*r)})
	out := &PlanOutput{Plan: held, Records: st.Records}
	res := e.apply(ctx, rc, held, st.Records)
	r.Status = StatusSucceeded
	if ctx.Err() != nil {
		r.Status, r.Error = StatusFailed, cancelled(ctx)
	} else if res.failed > 0 {
		rc.problem("%d change(s) failed", res.failed)
	}
	return e.finish(ctx, rc, &pending{world: worldFrom(st), out: out, applied: res, approved: true}, held)
}

func brakeReason(p *Plan) string {
	if p.Brake == nil {
		return "not braked"
	}
	return p.Brake.Reason
}

// Discard drops the held plan.
func (e *Engine) Discard(ctx context.Context, req PlanRequest) error {
	st, err := e.guard()
	if err != nil {
		return err
	}
	if st.HeldPlan == nil {
		return ErrNoHeldPlan
	}
	if req.PlanID != "" && req.PlanID != st.HeldPlan.ID {
		return fmt.Errorf("plan %s is not the held plan %s: %w", req.PlanID, st.HeldPlan.ID, ErrStalePlan)
	}
	j := e.adminEntry("", req.Actor, "discarded held plan %s (%d changes)", st.HeldPlan.ID, len(st.HeldPlan.Changes))
	return e.mutate(ctx, []JournalEntry{j}, func(next *State, c *Commit) {
		next.HeldPlan = nil
		c.SetHeldPlan = true
	})
}

// Cancel stops the running sync.
func (e *Engine) Cancel(ctx context.Context, actor string) error {
	if e.opt.ReadOnly {
		return ErrReadOnly
	}
	e.mu.Lock()
	cancel, running := e.cancelRun, e.progress != nil
	e.mu.Unlock()
	if cancel == nil || !running {
		return fmt.Errorf("no sync is running: %w", ErrNotFound)
	}
	e.log.Warn("sync cancelled", "actor", actor)
	cancel(fmt.Errorf("cancelled by %s", actorOr(actor)))
	return nil
}

// RunDetail returns a run with its journal entries.
func (e *Engine) RunDetail(ctx context.Context, id string) (*RunDetail, error) {
	runs, err := e.deps.Store.Runs(ctx, 0)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(runs, func(r Run) bool { return r.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	d := &RunDetail{Run: runs[i]}
	if r := d.Run; r.JournalFirst > 0 {
		if d.Journal, err = e.deps.Store.Journal(ctx, JournalQuery{FromSeq: r.JournalFirst, ToSeq: r.JournalLast}); err != nil {
			return nil, err
		}
	}
	if st := e.current(); st != nil && st.HeldPlan != nil && st.HeldPlan.ID == d.Run.PlanID {
		d.Plan = st.HeldPlan
	}
	return d, nil
}

// Candidates returns the MDM records of a device's user that could be it.
func (e *Engine) Candidates(ctx context.Context, device DeviceKey) ([]Candidate, error) {
	st, r, err := e.record(device)
	if err != nil {
		return nil, err
	}
	mb, ok := st.Mailboxes[strings.ToLower(r.Mailbox)]
	if !ok {
		mb = Mailbox{UPN: r.Mailbox, PrimarySMTP: r.PrimarySMTP}
	}
	addrs := map[string]bool{}
	for _, a := range mb.AllAddresses() {
		addrs[a] = true
	}
	linked := map[string]DeviceKey{}
	for k, l := range st.Links {
		linked[l.MDMID] = k
	}
	fam := easFamily(&r.EASDevice)
	mdm, err := e.deps.Store.MDMDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the saved MDM records: %w", err)
	}
	var out []Candidate
	for _, m := range mdm {
		if !addrs[strings.ToLower(m.UserPrincipalName)] && !addrs[strings.ToLower(m.Email)] {
			continue
		}
		if k, ok := linked[m.ID]; ok && k != device {
			continue
		}
		c := Candidate{MDM: *m, Suggested: m.ID == r.Suggested}
		var why []string
		if m.EASDeviceID == "" {
			why = append(why, "reports no EAS ID")
		} else {
			why = append(why, "reports EAS ID "+m.EASDeviceID)
		}
		if f := mdmFamily(m); f != "" && f == fam {
			why = append(why, "same platform")
		} else {
			why = append(why, "other platform ("+m.OperatingSystem+")")
		}
		if !m.Enrolled.IsZero() && !m.Enrolled.Before(r.FirstSync) {
			why = append(why, "enrolled after the partnership's first sync")
		}
		c.Why = strings.Join(why, ", ")
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Candidate) int {
		if a.Suggested != b.Suggested {
			if a.Suggested {
				return -1
			}
			return 1
		}
		return strings.Compare(a.MDM.ID, b.MDM.ID)
	})
	return out, nil
}

// Logs returns recent log lines.
func (e *Engine) Logs(ctx context.Context, limit int) ([]LogEntry, error) {
	if e.opt.LogRing == nil {
		return nil, nil
	}
	return e.opt.LogRing.Entries(limit), nil
}
