package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// applied is what the apply and notify phases did.
type applied struct {
	mu       sync.Mutex
	results  []ChangeResult
	notified map[DeviceKey]NotifyState
	owned    []OwnedEntry
	disowned []OwnedKey
	// unrecorded are the disowned keys whose RecordChanges failed: the
	// store still holds them until the run's commit deletes them.
	unrecorded []OwnedKey
	applied    int
	failed     int
	sent       int
	// orgDefault is the DefaultAccessLevel Exchange now has, when the run
	// switched it.
	orgDefault string
	removed    []Removal
	removedAt  time.Time
}

// Retries of a change that failed for a transient reason, and the pause
// before each.
var applyRetryDelays = []time.Duration{time.Second, 3 * time.Second}

// notifyParallel is how many notifications are sent at once.
const notifyParallel = 4

// apply sends the plan's notifications and makes its changes: a change
// that blocks a device waits until the device's notification was tried
// and journaled, so the user learns why mail stops before it stops; every
// other change goes ahead meanwhile.
func (e *Engine) apply(ctx context.Context, rc *run, plan *Plan, prev map[DeviceKey]DeviceRecord) *applied {
	// Every change has a result, and most add or remove an owned entry:
	// sized up front, a large run's tally does not regrow them by
	// doubling.
	res := &applied{
		notified: make(map[DeviceKey]NotifyState, len(plan.Notifications)),
		results:  make([]ChangeResult, 0, len(plan.Changes)),
		owned:    make([]OwnedEntry, 0, len(plan.Changes)),
	}
	n := e.startNotify(ctx, rc, plan.Notifications, prev, res)
	defer n.finish()
	var grandfather, rest []Change
	for _, c := range plan.Changes {
		if c.Grandfather {
			grandfather = append(grandfather, c)
		} else {
			rest = append(rest, c)
		}
	}
	if plan.OrgDefault != nil {
		// Every grandfathering entry must be in place before the switch.
		e.change(ctx, rc, grandfather, res, n)
		e.switchOrgDefault(ctx, rc, plan.OrgDefault, res)
	} else {
		rest = plan.Changes
	}
	e.change(ctx, rc, rest, res, n)
	n.finish()
	e.remove(ctx, rc, plan.Removals, res)
	return res
}

// switchOrgDefault sets Exchange's DefaultAccessLevel, if every
// grandfathering change went through.
func (e *Engine) switchOrgDefault(ctx context.Context, rc *run, od *OrgDefaultChange, res *applied) {
	res.mu.Lock()
	failed := res.failed
	res.mu.Unlock()
	j := JournalEntry{Time: e.now(), RunID: rc.r.ID, Kind: JournalAdmin, Actor: rc.actor,
		Message: fmt.Sprintf("DefaultAccessLevel %s → %s: %s", od.From, od.To, od.Reason)}
	var err error
	switch {
	case failed > 0:
		err = fmt.Errorf("%d grandfathering change(s) failed; the switch waits for the next run", failed)
	case e.deps.ExchangeAdmin == nil:
		err = fmt.Errorf("no Exchange admin connection: %w", ErrUnavailable)
	case ctx.Err() != nil:
		err = ctx.Err()
	default:
		err = e.deps.ExchangeAdmin.SetOrgDefault(ctx, od.To)
	}
	j.OK = err == nil
	if err != nil {
		j.Error = err.Error()
		rc.problem("DefaultAccessLevel not switched to %s: %v", od.To, err)
	} else {
		res.mu.Lock()
		res.orgDefault = od.To
		res.mu.Unlock()
		rc.log.Warn("switched the org's DefaultAccessLevel", "from", od.From, "to", od.To)
	}
	saved, jerr := e.deps.Store.RecordChanges(context.WithoutCancel(ctx), []JournalEntry{j}, nil, nil)
	if jerr != nil {
		rc.problem("journal the DefaultAccessLevel switch: %v", jerr)
	}
	rc.journaled(saved)
}

// remove removes idle partnerships, journaling each before and after.
func (e *Engine) remove(ctx context.Context, rc *run, rs []Removal, res *applied) {
	if len(rs) == 0 {
		return
	}
	if e.deps.ExchangeAdmin == nil {
		rc.problem("%d idle partnership(s) not removed: no Exchange admin connection", len(rs))
		return
	}
	saveCtx := context.WithoutCancel(ctx)
	res.removedAt = e.now()
	failed := 0
	for _, r := range rs {
		if ctx.Err() != nil {
			break
		}
		key := KeyOf(r.Mailbox, r.DeviceID)
		begin := JournalEntry{Time: e.now(), RunID: rc.r.ID, Kind: JournalRemove, Stage: StageBegin, Device: key, Actor: rc.actor,
			Message: "remove partnership " + r.DeviceID + ": " + r.Reason}
		saved, err := e.deps.Store.RecordChanges(saveCtx, []JournalEntry{begin}, nil, nil)
		if err != nil {
			rc.problem("journal before removal: %v", err)
			return
		}
		rc.journaled(saved)
		err = e.deps.ExchangeAdmin.RemoveDevice(ctx, r.Mailbox, r.DeviceID)
		end := JournalEntry{Time: e.now(), RunID: rc.r.ID, Kind: JournalRemove, Stage: StageEnd, Device: key, Actor: rc.actor,
			OK: err == nil, Message: "remove partnership " + r.DeviceID + ": " + okWord(err == nil)}
		if err != nil {
			end.Error = err.Error()
			failed++
		} else {
			res.mu.Lock()
			res.removed = append(res.removed, r)
			res.mu.Unlock()
		}
		if saved, err := e.deps.Store.RecordChanges(saveCtx, []JournalEntry{end}, nil, nil); err == nil {
			rc.journaled(saved)
		}
	}
	if failed > 0 {
		rc.problem("%d idle partnership removal(s) failed", failed)
	}
}

// notify sends notifications, a few at a time, and journals each.
func (e *Engine) notify(ctx context.Context, rc *run, ns []Notification, prev map[DeviceKey]DeviceRecord, res *applied) {
	e.startNotify(ctx, rc, ns, prev, res).finish()
}

// notifier is the notifications of a run going out in the background. A
// nil notifier has nothing to send.
type notifier struct {
	// tried has a channel per device, closed once its notification was
	// tried and journaled (or will not be: the run was cancelled).
	tried map[DeviceKey]chan struct{}
	done  chan struct{} // closed when every notification is tried and journaled
	// quiet stops notify progress events once changes report theirs.
	quiet atomic.Bool
}

// wait waits until the notifications of the devices the changes block
// were tried; false when ctx ended first.
func (n *notifier) wait(ctx context.Context, changes []Change) bool {
	if n == nil {
		return ctx.Err() == nil
	}
	for _, c := range changes {
		if !c.Blocks() {
			continue
		}
		ch, ok := n.tried[KeyOf(c.Mailbox, c.DeviceID)]
		if !ok {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// finish waits until every notification was tried and journaled.
func (n *notifier) finish() {
	if n != nil {
		<-n.done
	}
}

// Notifications are journaled in chunks of at most notifyJournalChunk
// entries, at least every notifyJournalEvery.
const (
	notifyJournalChunk = 1000
	notifyJournalEvery = 200 * time.Millisecond
)

// startNotify starts sending notifications, a few at a time, in the order
// the changes' batches go out; each is journaled, in chunks, as it is
// tried.
func (e *Engine) startNotify(ctx context.Context, rc *run, ns []Notification, prev map[DeviceKey]DeviceRecord, res *applied) *notifier {
	if len(ns) == 0 {
		return nil
	}
	t := e.now()
	rc.progress(PhaseNotify, 0, len(ns))
	if e.deps.Mailer == nil {
		rc.problem("%d notification(s) planned but no mailer is configured", len(ns))
		rc.phase(PhaseNotify, t, nil)
		return nil
	}
	n := &notifier{tried: make(map[DeviceKey]chan struct{}, len(ns)), done: make(chan struct{})}
	for _, x := range ns {
		if _, ok := n.tried[x.Device]; !ok {
			n.tried[x.Device] = make(chan struct{})
		}
	}
	// batches sorts changes by mailbox: send in the same order, so the
	// first batches' notifications go out first.
	order := slices.Clone(ns)
	slices.SortStableFunc(order, func(a, b Notification) int {
		return strings.Compare(strings.ToLower(a.Mailbox), strings.ToLower(b.Mailbox))
	})
	entries := make([]JournalEntry, len(order))
	completed := make(chan int, len(order))
	go func() {
		defer close(completed)
		// A fixed set of senders: rendering a template needs a deep
		// stack, which a goroutine per mail would grow afresh each time.
		var (
			wg   sync.WaitGroup
			next = make(chan int)
			done int
		)
		for range min(notifyParallel, len(order)) {
			wg.Go(func() {
				for i := range next {
					entries[i] = e.sendOne(ctx, rc, order[i], prev, res)
					res.mu.Lock()
					done++
					d := done
					res.mu.Unlock()
					if d%50 == 0 && !n.quiet.Load() {
						rc.progress(PhaseNotify, d, len(order))
					}
					completed <- i
				}
			})
		}
		for i := range order {
			if ctx.Err() != nil {
				break
			}
			next <- i
		}
		close(next)
		wg.Wait()
	}()
	go func() {
		defer close(n.done)
		var (
			journalErr error
			tried      int
			chunk      []JournalEntry
			keys       []DeviceKey
			closed     = make(map[DeviceKey]bool, len(n.tried))
		)
		// n.tried is only read once built; closed keeps a device notified
		// twice from being closed twice.
		release := func(k DeviceKey) {
			if ch, ok := n.tried[k]; ok && !closed[k] {
				closed[k] = true
				close(ch)
			}
		}
		flush := func() {
			if len(chunk) > 0 {
				saved, err := e.deps.Store.RecordChanges(context.WithoutCancel(ctx), chunk, nil, nil)
				if err != nil {
					journalErr = err
					rc.problem("journal notifications: %v", err)
				}
				rc.journaled(saved)
			}
			for _, k := range keys {
				release(k)
			}
			chunk, keys = chunk[:0], keys[:0]
		}
		// Entries are journaled in chunks, every notifyJournalEvery or
		// notifyJournalChunk entries: a transaction per notification would
		// write the store's pages over and over.
		tick := time.NewTicker(notifyJournalEvery)
		defer tick.Stop()
	loop:
		for {
			select {
			case i, ok := <-completed:
				if !ok {
					break loop
				}
				tried++
				chunk = append(chunk, entries[i])
				keys = append(keys, order[i].Device)
				if len(chunk) >= notifyJournalChunk {
					flush()
				}
			case <-tick.C:
				flush()
			}
		}
		flush()
		for k := range n.tried { // never tried: the run was cancelled
			release(k)
		}
		res.mu.Lock()
		sent := res.sent
		res.mu.Unlock()
		if failed := tried - sent; failed > 0 {
			rc.problem("%d notification(s) failed; they are retried next run", failed)
		}
		if !n.quiet.Load() {
			rc.progress(PhaseNotify, tried, len(order))
		}
		rc.phase(PhaseNotify, t, journalErr)
	}()
	return n
}

// sendOne sends one notification and returns its journal entry.
func (e *Engine) sendOne(ctx context.Context, rc *run, x Notification, prev map[DeviceKey]DeviceRecord, res *applied) JournalEntry {
	err := e.deps.Mailer.Send(ctx, x)
	now := e.now()
	st := prev[x.Device].Notify
	st.LastTried = now
	j := JournalEntry{Time: now, RunID: rc.r.ID, Kind: JournalNotify, Device: x.Device, Actor: rc.actor, OK: err == nil}
	if err != nil {
		st.LastError = err.Error()
		j.Error = err.Error()
		j.Message = "enrollment notification to " + x.To + " failed"
	} else {
		if st.FirstSent.IsZero() {
			st.FirstSent = now
		}
		st.LastSent, st.LastError = now, ""
		st.Count++
		j.Message = "enrollment notification sent to " + x.To
		if x.Resend {
			j.Message = "enrollment notification resent to " + x.To
		}
	}
	res.mu.Lock()
	res.notified[x.Device] = st
	if err == nil {
		res.sent++
	}
	res.mu.Unlock()
	return j
}

// batches cuts changes into batches of about size, never splitting one
// mailbox's changes, so that no two concurrent calls edit one mailbox.
// A batch is a list of indexes into changes, in mailbox order: four bytes
// a change, where a sorted copy of a large run's changes would be
// megabytes held until the last batch is done (see batch).
func batches(changes []Change, size int) [][]int32 {
	order := make([]int32, len(changes))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		return strings.Compare(strings.ToLower(changes[a].Mailbox), strings.ToLower(changes[b].Mailbox))
	})
	var out [][]int32
	start := 0
	for i := 1; i <= len(order); i++ {
		if i == len(order) || (i-start >= size && !strings.EqualFold(changes[order[i]].Mailbox, changes[order[i-1]].Mailbox)) {
			out = append(out, order[start:i])
			start = i
		}
	}
	return out
}

// batch returns the changes a batch of batches names.
func batch(changes []Change, idx []int32) []Change {
	out := make([]Change, len(idx))
	for i, j := range idx {
		out[i] = changes[j]
	}
	return out
}

// change applies list changes in batches, up to ApplyParallel at once,
// journaling each change before and after.
func (e *Engine) change(ctx context.Context, rc *run, changes []Change, res *applied, n *notifier) {
	if len(changes) == 0 {
		return
	}
	t := e.now()
	if n != nil {
		n.quiet.Store(true)
	}
	rc.progress(PhaseApply, 0, len(changes))
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, e.opt.ApplyParallel)
		done int
	)
	for _, idx := range batches(changes, e.opt.ApplyBatch) {
		b := batch(changes, idx)
		if !n.wait(ctx, b) {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results := e.applyBatch(ctx, rc, b, res)
			res.mu.Lock()
			done += len(results)
			d := done
			res.mu.Unlock()
			rc.progress(PhaseApply, d, len(changes))
		}()
	}
	wg.Wait()
	rc.phase(PhaseApply, t, ctx.Err())
}

// applyBatch journals, applies and journals one batch.
func (e *Engine) applyBatch(ctx context.Context, rc *run, batch []Change, res *applied) []ChangeResult {
	saveCtx := context.WithoutCancel(ctx)
	now := e.now()
	begin := make([]JournalEntry, len(batch))
	var owned []OwnedEntry
	for i, c := range batch {
		begin[i] = JournalEntry{Time: now, RunID: rc.r.ID, Kind: JournalChange, Stage: StageBegin,
			Device: KeyOf(c.Mailbox, c.DeviceID), Change: ptr(c), Actor: rc.actor, Message: c.Reason}
		if c.Op == OpAdd {
			owned = append(owned, OwnedEntry{Mailbox: c.Mailbox, DeviceID: c.DeviceID, List: c.List, Added: now, RunID: rc.r.ID,
				Grandfathered: c.Grandfather})
		}
	}
	saved, err := e.deps.Store.RecordChanges(saveCtx, begin, owned, nil)
	if err != nil {
		// Without a journal entry the change must not happen.
		rc.problem("journal before apply: %v", err)
		out := make([]ChangeResult, len(batch))
		for i, c := range batch {
			out[i] = ChangeResult{Change: c, Error: "not attempted: journal write failed: " + err.Error(), Transient: true}
		}
		e.tally(res, out, nil, nil, false)
		return out
	}
	rc.journaled(saved)

	results := e.tryBatch(ctx, rc, batch)

	end := make([]JournalEntry, len(results))
	var disowned []OwnedKey
	done := e.now()
	for i, r := range results {
		c := r.Change
		c.Reason = "" // the begin entry has it; the journal is the store's largest bucket
		end[i] = JournalEntry{Time: done, RunID: rc.r.ID, Kind: JournalChange, Stage: StageEnd,
			Device: KeyOf(r.Mailbox, r.DeviceID), Change: &c, OK: r.OK, Error: r.Error, Actor: rc.actor,
			Message: fmt.Sprintf("%s %s %s list: %s", r.Op, r.DeviceID, r.List, okWord(r.OK))}
		switch {
		case r.OK && r.Op == OpRemove:
			disowned = append(disowned, OwnedKeyOf(r.Mailbox, r.List, r.DeviceID))
		case !r.OK && r.Op == OpAdd && !r.Transient:
			disowned = append(disowned, OwnedKeyOf(r.Mailbox, r.List, r.DeviceID))
		}
	}
	saved, err = e.deps.Store.RecordChanges(saveCtx, end, nil, disowned)
	if err != nil {
		rc.problem("journal after apply: %v", err)
	}
	rc.journaled(saved)
	e.tally(res, results, owned, disowned, err == nil)
	return results
}

// changeKey identifies a change regardless of its reason text and case.
type changeKey struct {
	device DeviceKey
	list   List
	op     Op
}

func keyOfChange(c Change) changeKey {
	return changeKey{KeyOf(c.Mailbox, c.DeviceID), c.List, c.Op}
}

func okWord(ok bool) string {
	if ok {
		return "done"
	}
	return "failed"
}

// tryBatch applies a batch, retrying changes that failed transiently.
func (e *Engine) tryBatch(ctx context.Context, rc *run, batch []Change) []ChangeResult {
	out := make([]ChangeResult, len(batch))
	todo := slices.Clone(batch)
	idx := make([]int, len(batch))
	for i := range idx {
		idx[i] = i
	}
	for attempt := 0; ; attempt++ {
		got, err := e.deps.ExchangeWriter.ApplyChanges(ctx, todo)
		result := matchResults(todo, got)
		var retry []Change
		var retryIdx []int
		for i, c := range todo {
			r, ok := result(i)
			r.Change = c
			if !ok {
				msg := "no result from Exchange"
				if err != nil {
					msg = err.Error()
				}
				r = ChangeResult{Change: c, Error: msg, Transient: true}
			}
			if !r.OK && r.Transient && attempt < len(applyRetryDelays) && ctx.Err() == nil {
				retry = append(retry, c)
				retryIdx = append(retryIdx, idx[i])
				continue
			}
			out[idx[i]] = r
		}
		if len(retry) == 0 {
			break
		}
		rc.log.Warn("retrying changes that failed transiently", "count", len(retry), "attempt", attempt+1, "err", err)
		select {
		case <-time.After(applyRetryDelays[attempt]):
		case <-ctx.Done():
		}
		todo, idx = retry, retryIdx
	}
	return out
}

// matchResults returns the result for each of changes, from results an
// adapter returned in any order. The adapters return them in the order
// asked, which is checked field by field; only otherwise are the results
// indexed by change.
func matchResults(changes []Change, results []ChangeResult) func(i int) (ChangeResult, bool) {
	inOrder := len(results) == len(changes)
	for i := 0; inOrder && i < len(changes); i++ {
		inOrder = sameChange(changes[i], results[i].Change)
	}
	if inOrder {
		return func(i int) (ChangeResult, bool) { return results[i], true }
	}
	byChange := make(map[changeKey]ChangeResult, len(results))
	for _, r := range results {
		byChange[keyOfChange(r.Change)] = r
	}
	return func(i int) (ChangeResult, bool) {
		r, ok := byChange[keyOfChange(changes[i])]
		return r, ok
	}
}

// sameChange reports whether a and b are the same change, spelled alike;
// results that spell theirs otherwise are matched by keyOfChange.
func sameChange(a, b Change) bool {
	return a.List == b.List && a.Op == b.Op && a.DeviceID == b.DeviceID && a.Mailbox == b.Mailbox
}

// tally adds a batch's results, the owned entries recorded before it and
// the keys it disowned; recorded says whether RecordChanges saved those.
func (e *Engine) tally(res *applied, results []ChangeResult, owned []OwnedEntry, disowned []OwnedKey, recorded bool) {
	res.mu.Lock()
	defer res.mu.Unlock()
	res.results = append(res.results, results...)
	res.owned = append(res.owned, owned...)
	res.disowned = append(res.disowned, disowned...)
	if !recorded {
		res.unrecorded = append(res.unrecorded, disowned...)
	}
	for _, r := range results {
		if r.OK {
			res.applied++
		} else {
			res.failed++
		}
	}
}

// nextState builds the state a run leaves behind, on top of base (the
// current state when the run commits, which may carry an admin's link made
// while the run went on). When fresh, w's maps and out.Records belong to
// this run alone and become the new state's, changed in place; otherwise
// (an approved plan, whose world is the current state) they are copied.
// base's maps are shared until they change: a State is never modified
// once published.
func (e *Engine) nextState(base *State, w *World, out *PlanOutput, res *applied, started time.Time, kind RunKind, fresh bool) *State {
	next := &State{
		Serial:    base.Serial,
		Meta:      base.Meta,
		MDMStored: base.MDMStored,
		Links:     base.Links,
		Owned:     base.Owned,
		Overrides: base.Overrides,
		HeldPlan:  base.HeldPlan,
	}
	if len(out.Expired) > 0 {
		next.Overrides = maps.Clone(base.Overrides)
		for _, k := range out.Expired {
			delete(next.Overrides, k)
		}
	}
	if len(out.NewLinks) > 0 {
		next.Links = maps.Clone(base.Links)
		for _, l := range out.NewLinks {
			if _, taken := next.Links[l.Device]; !taken {
				next.Links[l.Device] = l
			}
		}
	}
	if len(out.Disowned) > 0 || (res != nil && len(res.owned)+len(res.disowned) > 0) {
		next.Owned = maps.Clone(base.Owned)
		for _, k := range out.Disowned {
			delete(next.Owned, k)
		}
		if res != nil {
			for _, o := range res.owned {
				next.Owned[o.Key()] = o
			}
			for _, k := range res.disowned {
				delete(next.Owned, k)
			}
		}
	}
	next.Mailboxes = w.Mailboxes
	if res != nil {
		next.Mailboxes = appliedLists(w.Mailboxes, res.results, fresh)
	}
	org := w.Org
	if res != nil && res.orgDefault != "" {
		org.DefaultAccessLevel = res.orgDefault
	}
	removed := map[DeviceKey]bool{}
	if res != nil {
		for _, r := range res.removed {
			removed[KeyOf(r.Mailbox, r.DeviceID)] = true
		}
	}
	next.Records = out.Records
	if !fresh {
		next.Records = make(map[DeviceKey]DeviceRecord, len(out.Records))
	}
	for k, r := range out.Records {
		if removed[k] {
			delete(next.Records, k) // deleting the entry being ranged over is safe
			continue
		}
		if r.IsEAS() {
			mb, ok := next.Mailboxes[strings.ToLower(r.Mailbox)]
			mbp := &mb
			if !ok {
				mbp = nil
			}
			r.AccessState, r.AccessReason = ExchangeAccess(org, w.Rules, mbp, &r.EASDevice)
		}
		if res != nil {
			if n, ok := res.notified[k]; ok {
				r.Notify = n
			}
		}
		next.Records[k] = r
	}
	m := &next.Meta
	m.Org, m.Rules, m.Scope = org, w.Rules, w.Scope
	if res != nil && len(res.removed) > 0 {
		m.Removals = pruneRemovals(m.Removals, res.removedAt)
		for _, r := range res.removed {
			k := strings.ToLower(r.Mailbox)
			m.Removals[k] = append(m.Removals[k], res.removedAt)
		}
	}
	if w.ExchangeComplete && w.IntuneComplete {
		if kind == RunFull {
			m.LastFull = started
		} else {
			m.LastQuick = started
		}
	}
	if w.IntuneComplete && kind == RunFull {
		m.MDMCount = len(w.MDM)
	}
	if fresh {
		next.MDMStored = len(w.MDM) // what its commit leaves in the store
	}
	return next
}

// appliedLists returns the mailboxes with the successful changes made: mbs
// itself, changed in place, when it is this run's own (fresh), else a copy.
// A changed mailbox's lists are copied either way.
func appliedLists(mbs map[string]Mailbox, results []ChangeResult, fresh bool) map[string]Mailbox {
	out := mbs
	if !fresh {
		out = maps.Clone(mbs)
	}
	touched := map[string]bool{}
	for _, r := range results {
		if !r.OK {
			continue
		}
		k := strings.ToLower(r.Mailbox)
		mb, ok := out[k]
		if !ok {
			mb = Mailbox{UPN: r.Mailbox}
		}
		if !touched[k] {
			mb.Allowed, mb.Blocked = slices.Clone(mb.Allowed), slices.Clone(mb.Blocked)
			touched[k] = true
		}
		lp := &mb.Allowed
		if r.List == ListBlocked {
			lp = &mb.Blocked
		}
		if r.Op == OpAdd {
			if !containsFold(*lp, r.DeviceID) {
				*lp = append(*lp, r.DeviceID)
			}
		} else {
			*lp = slices.DeleteFunc(*lp, func(x string) bool { return strings.EqualFold(x, r.DeviceID) })
		}
		out[k] = mb
	}
	return out
}

// pruneRemovals copies the removal log without entries older than 30 days.
func pruneRemovals(in map[string][]time.Time, now time.Time) map[string][]time.Time {
	out := make(map[string][]time.Time, len(in))
	for mb, ts := range in {
		var keep []time.Time
		for _, t := range ts {
			if now.Sub(t) < 30*24*time.Hour {
				keep = append(keep, t)
			}
		}
		if len(keep) > 0 {
			out[mb] = keep
		}
	}
	return out
}

// digest mails the org's admins the devices this run blocked.
func (e *Engine) digest(ctx context.Context, rc *run, w *World, out *PlanOutput, res *applied) {
	ds, ok := e.deps.Mailer.(DigestSender)
	if !e.opt.Policy.Notify.AdminDigest || !ok || e.deps.Mailer == nil || ctx.Err() != nil {
		return
	}
	d := Digest{To: w.Org.AdminMailRecipients}
	for _, r := range res.results {
		if !r.OK || r.List != ListBlocked || r.Op != OpAdd {
			continue
		}
		if len(d.Blocked) == DigestMax {
			d.More++
			continue
		}
		rec := out.Records[KeyOf(r.Mailbox, r.DeviceID)]
		d.Blocked = append(d.Blocked, DigestDevice{Mailbox: r.Mailbox, DeviceID: r.DeviceID, DeviceModel: rec.DeviceModel, Reason: rec.Decision.Reason})
	}
	if len(d.Blocked) == 0 {
		return
	}
	if len(d.To) == 0 {
		rc.problem("admin digest not sent: Exchange's AdminMailRecipients is empty")
		return
	}
	rc.mu.Lock()
	d.Run = *rc.r
	rc.mu.Unlock()
	err := ds.SendDigest(ctx, d)
	j := JournalEntry{Time: e.now(), RunID: rc.r.ID, Kind: JournalNotify, Actor: rc.actor, OK: err == nil,
		Message: fmt.Sprintf("admin digest of %d blocked device(s) to %s", len(d.Blocked)+d.More, strings.Join(d.To, ", "))}
	if err != nil {
		j.Error = err.Error()
		rc.problem("admin digest failed: %v", err)
	}
	if saved, err := e.deps.Store.RecordChanges(context.WithoutCancel(ctx), []JournalEntry{j}, nil, nil); err == nil {
		rc.journaled(saved)
	}
}
