package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// run is the bookkeeping of one sync in progress.
type run struct {
	e     *Engine
	r     *Run
	actor string // who the journal says acted
	quiet bool   // an admin action: no progress events
	log   *slog.Logger
	mu    sync.Mutex // guards r while phases run concurrently
	jmin  uint64
	jmax  uint64
}

func (rc *run) phase(name string, start time.Time, err error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	pt := PhaseTiming{Name: name, Started: start, Duration: rc.e.now().Sub(start)}
	if err != nil {
		pt.Error = err.Error()
	}
	rc.r.Phases = append(rc.r.Phases, pt)
}

func (rc *run) problem(format string, args ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.r.Problems = append(rc.r.Problems, fmt.Sprintf(format, args...))
}

func (rc *run) journaled(entries []JournalEntry) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, j := range entries {
		if rc.jmin == 0 || j.Seq < rc.jmin {
			rc.jmin = j.Seq
		}
		rc.jmax = max(rc.jmax, j.Seq)
	}
}

// progress publishes where the run is.
func (rc *run) progress(phase string, done, total int) {
	if rc.quiet {
		return
	}
	e := rc.e
	rc.mu.Lock()
	p := &Progress{Run: *rc.r, Phase: phase, Done: done, Total: total}
	rc.mu.Unlock()
	e.mu.Lock()
	e.progress = p
	e.mu.Unlock()
	kind := EventProgress
	if done == 0 {
		kind = EventPhase
	}
	cp := *p
	e.emit(Event{Kind: kind, Progress: &cp})
}

// execute runs one sync from observation to commit.
func (e *Engine) execute(ctx context.Context, req SyncRequest) (*RunReport, error) {
	start := e.now()
	st := e.current()
	r := &Run{ID: e.newRunID(start), Kind: req.Kind, Trigger: req.Trigger, Actor: req.Actor, Status: StatusRunning, Started: start}
	rc := &run{e: e, r: r, actor: "easgate", log: e.log.With("run", r.ID, "kind", string(r.Kind), "trigger", string(r.Trigger))}
	if req.Kind == RunQuick && st.Meta.LastFull.IsZero() {
		r.Kind = RunFull
		rc.problem("no complete full sync yet: ran a full sync instead of a quick one")
	}
	rc.log.Info("sync started", "dry_run", req.DryRun, "actor", req.Actor)
	if !req.DryRun {
		// Marks the run's start in the journal, so a run the process never
		// finished is found and recorded on the next start.
		saved, err := e.deps.Store.RecordChanges(context.WithoutCancel(ctx), []JournalEntry{{
			Time: start, RunID: r.ID, Kind: JournalRun, Stage: StageBegin, Actor: actorOr(req.Actor),
			Message: fmt.Sprintf("%s sync started (%s, by %s)", r.Kind, r.Trigger, actorOr(req.Actor)),
		}}, nil, nil)
		if err != nil {
			return e.fail(ctx, rc, fmt.Errorf("journal the run's start: %w", err))
		}
		rc.journaled(saved)
	}
	e.emit(Event{Kind: EventRunStarted, Run: ptr(*r)})
	rc.progress(PhaseObserveExchange, 0, 0)

	w, err := e.observe(ctx, rc, st, r.Kind)
	if err != nil {
		return e.fail(ctx, rc, err)
	}

	t := e.now()
	rc.progress(PhasePlan, 0, 0)
	out := BuildPlan(PlanInput{
		Now: start, Serial: st.Serial, Kind: r.Kind, Policy: e.opt.Policy, World: w,
		Links: st.Links, Owned: st.Owned, Prev: st.Records, PrevMDMCount: st.Meta.MDMCount, Overrides: st.Overrides,
		RecentRemovals: st.Meta.RecentRemovals(start),
	})
	// The planned records hold every device now: the world's copy is
	// garbage, a few hundred bytes a partnership that a large run should
	// not carry through apply and commit.
	w.EAS = nil
	plan := out.Plan
	plan.ID = r.ID
	r.PlanID = plan.ID
	rc.phase(PhasePlan, t, nil)
	if n := len(plan.Withheld); n > 0 {
		rc.problem("%d blocking change(s) withheld because an inventory is incomplete", n)
	}
	rc.log.Info("plan computed", "changes", len(plan.Changes), "notifications", len(plan.Notifications),
		"withheld", len(plan.Withheld), "new_blocks", plan.NewBlocks(), "removals", len(plan.Removals))
	for _, n := range plan.Notes {
		rc.problem("%s", n)
	}

	switch {
	case req.DryRun:
		r.Status = StatusDryRun
		r.Counts = plan.Counts
		return e.finish(ctx, rc, nil, plan)
	case plan.Brake != nil && !req.Approve:
		r.Status = StatusBraked
		r.Error = "safety brake: " + plan.Brake.Reason
		rc.log.Warn("plan held by the safety brake", "reason", plan.Brake.Reason)
		return e.finish(ctx, rc, &pending{world: w, out: out, held: plan}, plan)
	}

	res := e.apply(ctx, rc, plan, st.Records)
	e.digest(ctx, rc, w, out, res)
	r.Status = StatusSucceeded
	if ctx.Err() != nil {
		r.Status, r.Error = StatusFailed, cancelled(ctx)
	} else if res.failed > 0 {
		rc.problem("%d change(s) failed", res.failed)
	}
	return e.finish(ctx, rc, &pending{world: w, out: out, applied: res}, plan)
}

func ptr[T any](v T) *T { return &v }

// pending is a run's result waiting to be committed.
type pending struct {
	world    *World
	out      *PlanOutput
	applied  *applied // nil when nothing was applied
	held     *Plan    // the plan the brake holds
	approved bool     // the held plan was applied: nothing was observed
}

// observe reads both sides concurrently and builds the world.
func (e *Engine) observe(ctx context.Context, rc *run, st *State, kind RunKind) (*World, error) {
	var since time.Time
	if kind == RunQuick {
		since = st.Meta.LastFull
		if st.Meta.LastQuick.After(since) {
			since = st.Meta.LastQuick
		}
		since = since.Add(-e.opt.QuickOverlap)
	}
	var (
		wg     sync.WaitGroup
		ex     *ExchangeInventory
		exErr  error
		mdm    *MDMInventory
		mdmErr error
		scope  *Scope
		scErr  error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		t := e.now()
		ex, exErr = e.deps.Exchange.Inventory(ctx, InventoryQuery{Since: since})
		rc.phase(PhaseObserveExchange, t, exErr)
		e.noteExchange(ex, exErr)
		if exErr == nil {
			rc.log.Info("exchange inventory read", "server", ex.Server, "devices", len(ex.Devices),
				"mailboxes", len(ex.Mailboxes), "problems", len(ex.Problems), "took", e.now().Sub(t))
		}
	}()
	// Devices and scope groups are read at once; the Intune adapter keeps
	// both within Graph's request limits.
	intuneStart := e.now()
	go func() {
		defer wg.Done()
		mdm, mdmErr = e.deps.Intune.ManagedDevices(ctx, MDMQuery{Since: since})
		if mdmErr == nil {
			rc.log.Info("intune inventory read", "devices", len(mdm.Devices), "problems", len(mdm.Problems), "took", e.now().Sub(intuneStart))
		}
	}()
	go func() {
		defer wg.Done()
		if kind == RunFull || st.Meta.Scope == nil {
			scope, scErr = e.resolveScope(ctx)
		} else {
			scope = st.Meta.Scope
		}
	}()
	wg.Wait()
	intuneErr := errors.Join(mdmErr, scErr)
	rc.phase(PhaseObserveIntune, intuneStart, intuneErr)
	e.noteIntune(intuneErr)
	if exErr != nil {
		return nil, fmt.Errorf("read Exchange: %w", exErr)
	}
	if mdmErr != nil {
		return nil, fmt.Errorf("read Intune: %w", mdmErr)
	}
	if scErr != nil && errors.Is(scErr, ErrGroupNotFound) {
		return nil, fmt.Errorf("resolve policy groups: %w", scErr)
	}
	rc.r.Server = ex.Server

	w := &World{ExchangeComplete: ex.Complete(), IntuneComplete: mdm.Complete() && scErr == nil}
	for _, p := range ex.Problems {
		rc.problem("Exchange: %s", p)
	}
	for _, p := range mdm.Problems {
		rc.problem("Intune: %s", p)
	}
	if scErr != nil {
		rc.problem("Intune: scope groups not resolved: %v", scErr)
		scope = st.Meta.Scope
	}
	w.Scope = scope
	if kind == RunQuick {
		if err := e.overlay(ctx, w, st, ex, mdm); err != nil {
			return nil, err
		}
	} else {
		w.Org, w.Rules = ex.Org, ex.Rules
		w.Mailboxes = make(map[string]Mailbox, len(ex.Mailboxes))
		for _, m := range ex.Mailboxes {
			w.Mailboxes[strings.ToLower(m.UPN)] = m
		}
		w.EAS = make(map[DeviceKey]EASDevice, len(ex.Devices))
		for _, d := range ex.Devices {
			w.EAS[d.Key()] = d
		}
		w.MDM = make(map[string]*MDMDevice, len(mdm.Devices))
		for i := range mdm.Devices {
			w.MDM[mdm.Devices[i].ID] = &mdm.Devices[i]
		}
	}
	return w, nil
}

// overlay builds a quick sync's world: the last snapshot with what changed
// merged in. Deletions only show in a full sync.
func (e *Engine) overlay(ctx context.Context, w *World, st *State, ex *ExchangeInventory, mdm *MDMInventory) error {
	w.Org, w.Rules = st.Meta.Org, st.Meta.Rules
	if ex.Org.DefaultAccessLevel != "" {
		w.Org, w.Rules = ex.Org, ex.Rules
	}
	w.Mailboxes = maps.Clone(st.Mailboxes)
	for _, m := range ex.Mailboxes {
		w.Mailboxes[strings.ToLower(m.UPN)] = m
	}
	w.EAS = make(map[DeviceKey]EASDevice, len(st.Records)+len(ex.Devices))
	for k, r := range st.Records {
		w.EAS[k] = r.EASDevice
	}
	for _, d := range ex.Devices {
		w.EAS[d.Key()] = d
	}
	saved, err := e.deps.Store.MDMDevices(ctx)
	if err != nil {
		return fmt.Errorf("read the saved MDM records: %w", err)
	}
	w.MDM = saved
	w.MDMDelta = make([]string, 0, len(mdm.Devices))
	for i := range mdm.Devices {
		m := &mdm.Devices[i]
		if old, ok := w.MDM[m.ID]; !ok || *old != *m {
			w.MDMDelta = append(w.MDMDelta, m.ID)
		}
		w.MDM[m.ID] = m
	}
	slices.Sort(w.MDMDelta)
	w.MDMDelta = slices.Compact(w.MDMDelta)
	return nil
}

// resolveScope reads the policy's groups.
func (e *Engine) resolveScope(ctx context.Context) (*Scope, error) {
	pol := e.opt.Policy
	s := &Scope{All: len(pol.IncludeGroups) == 0, Resolved: e.now()}
	var errs []error
	for _, g := range pol.IncludeGroups {
		users, err := e.deps.Intune.GroupMembers(ctx, g)
		if err != nil {
			errs = append(errs, fmt.Errorf("include group %s: %w", g, err))
			continue
		}
		s.Include = append(s.Include, users...)
	}
	for _, g := range pol.ExcludeGroups {
		users, err := e.deps.Intune.GroupMembers(ctx, g)
		if err != nil {
			errs = append(errs, fmt.Errorf("exclude group %s: %w", g, err))
			continue
		}
		s.Exclude = append(s.Exclude, users...)
	}
	return s, errors.Join(errs...)
}

func (e *Engine) noteExchange(inv *ExchangeInventory, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if hr, ok := e.deps.Exchange.(HealthReporter); ok {
		for _, h := range hr.Health() {
			hh := h
			e.health[h.Name] = &hh
		}
		return
	}
	server := ""
	if inv != nil {
		server = inv.Server
	}
	for name, h := range e.health {
		if name == intuneHealth {
			continue
		}
		h.InUse = name == server
	}
	if server == "" && len(e.opt.ExchangeServers) > 0 {
		server = e.opt.ExchangeServers[0]
	}
	if server == "" {
		return
	}
	h := e.health[server]
	if h == nil {
		h = &Health{Name: server}
		e.health[server] = h
	}
	h.LastCall, h.OK, h.InUse, h.Error = now, err == nil, err == nil, ""
	if err != nil {
		h.Error = err.Error()
	}
}

func (e *Engine) noteIntune(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.health[intuneHealth]
	h.LastCall, h.OK, h.InUse, h.Error = e.now(), err == nil, true, ""
	if err != nil {
		h.Error = err.Error()
	}
}

// HealthReporter is implemented by an Exchange adapter that keeps the health
// of each server it fails over between.
type HealthReporter interface {
	Health() []Health
}

// fail ends a run that could not observe.
func (e *Engine) fail(ctx context.Context, rc *run, err error) (*RunReport, error) {
	rc.r.Status = StatusFailed
	rc.r.Error = err.Error()
	rc.log.Error("sync failed", "err", err)
	return e.finish(ctx, rc, nil, nil)
}

// finish commits the run's result and its record, and tells subscribers.
func (e *Engine) finish(ctx context.Context, rc *run, p *pending, plan *Plan) (*RunReport, error) {
	r := rc.r
	t := e.now()
	r.JournalFirst, r.JournalLast = rc.jmin, rc.jmax
	saveCtx := context.WithoutCancel(ctx)
	var err error
	if p != nil {
		err = e.commitRun(saveCtx, rc, p)
	} else {
		r.Finished = e.now()
		err = e.deps.Store.SaveRun(saveCtx, r)
	}
	if err != nil {
		r.Status = StatusFailed
		r.Error = strings.TrimPrefix(r.Error+"; ", "; ") + "save: " + err.Error()
		r.Finished = e.now()
		rc.log.Error("saving the run failed", "err", err)
		_ = e.deps.Store.SaveRun(saveCtx, r)
	}
	rc.phase(PhaseSave, t, err)
	e.mu.Lock()
	e.progress = nil
	e.lastRun = ptr(*r)
	e.mu.Unlock()
	rc.log.Info("sync finished", "status", string(r.Status), "took", r.Duration(),
		"changes_applied", r.Counts.ChangesApplied, "changes_failed", r.Counts.ChangesFailed)
	e.emit(Event{Kind: EventRunFinished, Run: ptr(*r)})
	return &RunReport{Run: *r, Plan: plan}, nil
}

// cancelled words a cancelled run's error from the cancellation's cause.
func cancelled(ctx context.Context) string {
	msg := context.Cause(ctx).Error()
	if strings.HasPrefix(msg, "cancelled") {
		return msg
	}
	return "cancelled: " + msg
}
