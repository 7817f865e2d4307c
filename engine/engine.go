package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options tune the engine.
type Options struct {
	Policy Policy
	// ApplyBatch is how many changes one Exchange call carries; ApplyParallel
	// how many such calls run at once (Exchange allows 18 sessions per user).
	ApplyBatch    int
	ApplyParallel int
	// FullEvery and QuickEvery schedule runs in Serve; zero disables.
	FullEvery  time.Duration
	QuickEvery time.Duration
	// QuickOverlap widens a quick sync's window backwards, so that clock
	// skew and slow replication do not hide a change.
	QuickOverlap time.Duration
	// ExchangeServers are the configured servers, for the health view.
	ExchangeServers []string
	// ReadOnly refuses every action that changes Exchange or the store.
	ReadOnly bool
	Logger   *slog.Logger
	// LogRing, if set, keeps recent log lines for the console's log view;
	// Logger should write to it too.
	LogRing *LogRing
	Clock   Clock
}

// Deps are the adapters the engine drives.
type Deps struct {
	Exchange       ExchangeReader
	ExchangeWriter ExchangeWriter
	Intune         IntuneReader
	ExchangeAdmin  ExchangeAdmin // nil: remove, wipe and org default management are unavailable
	Mailer         Mailer        // nil: notifications are planned but not sent
	Store          Store
}

// Engine is easgate's sync engine. One goroutine runs syncs one at a time;
// readers get copies of an immutable state.
type Engine struct {
	opt  Options
	deps Deps
	log  *slog.Logger
	now  func() time.Time

	commitMu sync.Mutex // serialises commits: runs and admin actions
	mu       sync.Mutex
	state    *State
	sorted   []DeviceKey // state's record keys, sorted; built on demand
	progress *Progress
	lastRun  *Run
	health   map[string]*Health // by Exchange server name, and "intune"
	queue    []*syncCall
	wake     chan struct{}
	subs     map[chan Event]struct{}
	nextFull time.Time
	nextQ    time.Time
	runSeq   int

	cancelRun context.CancelCauseFunc // cancels the running sync

	done   chan struct{}
	cancel context.CancelFunc
	runCtx context.Context
	closed bool
}

var _ API = (*Engine)(nil)

type syncCall struct {
	req    SyncRequest
	done   chan struct{}
	report *RunReport
	err    error
}

// New returns an engine; Start loads its state and starts it.
func New(deps Deps, opt Options) (*Engine, error) {
	if deps.Store == nil {
		return nil, errors.New("engine needs a store")
	}
	if err := opt.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if opt.ApplyBatch <= 0 {
		opt.ApplyBatch = 500
	}
	if opt.ApplyParallel <= 0 {
		opt.ApplyParallel = 4
	}
	opt.ApplyParallel = min(opt.ApplyParallel, 18)
	if opt.QuickOverlap <= 0 {
		opt.QuickOverlap = 5 * time.Minute
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = SystemClock{}
	}
	e := &Engine{
		opt: opt, deps: deps, log: opt.Logger.With("subsystem", "engine"), now: opt.Clock.Now,
		health: map[string]*Health{},
		wake:   make(chan struct{}, 1),
		subs:   map[chan Event]struct{}{},
		done:   make(chan struct{}),
	}
	for _, s := range opt.ExchangeServers {
		e.health[s] = &Health{Name: s}
	}
	e.health[intuneHealth] = &Health{Name: "Microsoft Graph"}
	return e, nil
}

const intuneHealth = "\x00intune"

// Start loads the stored state and starts the goroutine that runs syncs.
// Close stops it.
func (e *Engine) Start(ctx context.Context) error {
	st, err := e.deps.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load store: %w", err)
	}
	if !e.opt.ReadOnly {
		if err := e.recoverInterrupted(ctx); err != nil {
			return fmt.Errorf("look for an interrupted run: %w", err)
		}
	}
	runs, err := e.deps.Store.Runs(ctx, 1)
	if err != nil {
		return fmt.Errorf("read run history: %w", err)
	}
	e.mu.Lock()
	e.state = normalise(st)
	if len(runs) > 0 {
		e.lastRun = &runs[0]
	}
	e.runCtx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.mu.Unlock()
	go e.worker()
	return nil
}

func normalise(st *State) *State {
	if st == nil {
		return NewState()
	}
	if st.Mailboxes == nil {
		st.Mailboxes = map[string]Mailbox{}
	}
	if st.Records == nil {
		st.Records = map[DeviceKey]DeviceRecord{}
	}
	if st.Links == nil {
		st.Links = map[DeviceKey]Link{}
	}
	if st.Owned == nil {
		st.Owned = map[OwnedKey]OwnedEntry{}
	}
	return st
}

// Close cancels a running sync, waits for the worker to stop and closes
// every subscription. It does not close the store.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed || e.cancel == nil {
		e.closed = true
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.cancel()
	e.mu.Unlock()
	<-e.done
	e.mu.Lock()
	for ch := range e.subs {
		delete(e.subs, ch)
		close(ch)
	}
	for _, c := range e.queue {
		c.err = ErrClosed
		close(c.done)
	}
	e.queue = nil
	e.mu.Unlock()
	return nil
}

// current returns the current immutable state.
func (e *Engine) current() *State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// publish makes st the current state.
func (e *Engine) publish(st *State) {
	e.mu.Lock()
	e.state = st
	e.sorted = nil
	e.mu.Unlock()
	e.emit(Event{Kind: EventState})
}

// Sync runs a sync and waits for it. Requests that arrive while another
// waits to run with the same settings join it.
func (e *Engine) Sync(ctx context.Context, req SyncRequest) (*RunReport, error) {
	if req.Kind == "" {
		req.Kind = RunFull
	}
	if req.Trigger == "" {
		req.Trigger = TriggerManual
	}
	if e.opt.ReadOnly && !req.DryRun {
		return nil, ErrReadOnly
	}
	if e.deps.Exchange == nil || e.deps.ExchangeWriter == nil || e.deps.Intune == nil {
		return nil, errors.New("sync needs Exchange and Intune connections; this engine was opened to read the store only")
	}
	e.mu.Lock()
	if e.closed || e.runCtx == nil {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	var call *syncCall
	for _, c := range e.queue {
		if c.req.Kind == req.Kind && c.req.DryRun == req.DryRun && c.req.Approve == req.Approve && c.req.PlanID == req.PlanID {
			call = c
			break
		}
	}
	if call == nil {
		call = &syncCall{req: req, done: make(chan struct{})}
		e.queue = append(e.queue, call)
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	select {
	case <-call.done:
		return call.report, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Engine) worker() {
	defer close(e.done)
	for {
		e.mu.Lock()
		if len(e.queue) == 0 {
			e.mu.Unlock()
			select {
			case <-e.wake:
				continue
			case <-e.runCtx.Done():
				return
			}
		}
		call := e.queue[0]
		e.queue = e.queue[1:]
		e.mu.Unlock()
		ctx, cancel := context.WithCancelCause(e.runCtx)
		e.mu.Lock()
		e.cancelRun = cancel
		e.mu.Unlock()
		if call.req.PlanID != "" {
			call.report, call.err = e.executeApproved(ctx, call.req)
		} else {
			call.report, call.err = e.execute(ctx, call.req)
		}
		cancel(nil)
		e.mu.Lock()
		e.cancelRun = nil
		e.mu.Unlock()
		close(call.done)
		if e.runCtx.Err() != nil {
			return
		}
	}
}

// Status returns the overview.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.state
	if st == nil {
		return Status{}, ErrClosed
	}
	s := Status{
		Counts:    CountRecords(st.Records, st.MDMStored),
		Policy:    e.opt.Policy.Summary(),
		HeldPlan:  summary(st.HeldPlan),
		NextFull:  e.nextFull,
		NextQuick: e.nextQ,
		ReadOnly:  e.opt.ReadOnly,
	}
	if e.lastRun != nil {
		r := *e.lastRun
		s.LastRun = &r
		s.Counts.ChangesPlanned, s.Counts.ChangesApplied = r.Counts.ChangesPlanned, r.Counts.ChangesApplied
		s.Counts.ChangesFailed, s.Counts.NotificationsSent = r.Counts.ChangesFailed, r.Counts.NotificationsSent
		if len(r.Problems) > 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("last run had %d problem(s): %s", len(r.Problems), r.Problems[0]))
		}
	}
	if e.progress != nil {
		p := *e.progress
		s.Running = &p
	}
	names := make([]string, 0, len(e.health))
	for n := range e.health {
		if n != intuneHealth {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		s.Exchange = append(s.Exchange, *e.health[n])
	}
	s.Intune = *e.health[intuneHealth]
	if st.HeldPlan != nil && st.HeldPlan.Brake != nil {
		s.Warnings = append(s.Warnings, "safety brake holds a plan: "+st.HeldPlan.Brake.Reason)
	}
	if w := e.orgDefaultWarning(st); w != "" {
		s.Warnings = append(s.Warnings, w)
	}
	s.Pending = e.pendingNotifications(st)
	return s, nil
}

func (e *Engine) orgDefaultWarning(st *State) string {
	if e.opt.Policy.UnmanagedAccess != AccessQuarantine || st.Meta.Org.DefaultAccessLevel == "" {
		return ""
	}
	if !strings.EqualFold(st.Meta.Org.DefaultAccessLevel, "Quarantine") {
		return fmt.Sprintf("unmanaged_access is quarantine but Exchange's DefaultAccessLevel is %s: unmanaged devices are not quarantined", st.Meta.Org.DefaultAccessLevel)
	}
	return ""
}

func (e *Engine) pendingNotifications(st *State) int {
	pol := e.opt.Policy.Notify
	if !pol.Enabled {
		return 0
	}
	now := e.now()
	n := 0
	for _, r := range st.Records {
		if !r.IsEAS() || r.Merged() || r.Decision.Exempt {
			continue
		}
		if r.Notify.Count == 0 || (r.Notify.Count <= pol.MaxResends && pol.ResendAfter > 0 && now.Sub(r.Notify.LastSent) >= pol.ResendAfter) {
			n++
		}
	}
	return n
}

// Devices returns the selected device records, sorted by mailbox then
// device ID.
func (e *Engine) Devices(ctx context.Context, q DeviceQuery) ([]DeviceRecord, error) {
	e.mu.Lock()
	st := e.state
	if st == nil {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if e.sorted == nil {
		keys := make([]DeviceKey, 0, len(st.Records))
		for k := range st.Records {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		e.sorted = keys
	}
	keys := e.sorted
	e.mu.Unlock()
	out := make([]DeviceRecord, 0, len(keys))
	for _, k := range keys {
		r := st.Records[k]
		if q.Filter.Match(&r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Device returns one device with its MDM record, owned entries and journal.
func (e *Engine) Device(ctx context.Context, key DeviceKey) (*DeviceDetail, error) {
	st := e.current()
	if st == nil {
		return nil, ErrClosed
	}
	r, ok := st.Records[key]
	if !ok {
		return nil, fmt.Errorf("device %s: %w", key, ErrNotFound)
	}
	d := &DeviceDetail{Record: r}
	if r.MDMID != "" {
		m, ok, err := e.deps.Store.MDMDevice(ctx, r.MDMID)
		if err != nil {
			return nil, fmt.Errorf("MDM record of %s: %w", key, err)
		}
		if ok {
			d.MDM = &m
		}
	}
	for _, l := range [...]List{ListAllowed, ListBlocked} {
		if o, ok := st.Owned[OwnedKeyOf(r.Mailbox, l, r.DeviceID)]; ok {
			d.Owned = append(d.Owned, o)
		}
	}
	j, err := e.deps.Store.Journal(ctx, JournalQuery{Device: key, Limit: 200})
	if err != nil {
		return nil, fmt.Errorf("journal of %s: %w", key, err)
	}
	d.Journal = j
	return d, nil
}

// Runs returns up to limit runs, newest first.
func (e *Engine) Runs(ctx context.Context, limit int) ([]Run, error) {
	return e.deps.Store.Runs(ctx, limit)
}

// Journal returns journal entries, oldest first.
func (e *Engine) Journal(ctx context.Context, q JournalQuery) ([]JournalEntry, error) {
	return e.deps.Store.Journal(ctx, q)
}

// Subscribe streams events until ctx is done.
func (e *Engine) Subscribe(ctx context.Context) (<-chan Event, error) {
	ch := make(chan Event, 256)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
		e.mu.Unlock()
	}()
	return ch, nil
}

// emit sends an event to every subscriber that has room for it.
func (e *Engine) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Summary is the policy in one line, for the overview.
func (p Policy) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unmanaged: %s", p.UnmanagedAccess)
	if p.BlockNoncompliant {
		b.WriteString(" · noncompliant: block")
	} else {
		b.WriteString(" · noncompliant: allow")
	}
	if len(p.IncludeGroups) > 0 {
		fmt.Fprintf(&b, " · %d included group(s)", len(p.IncludeGroups))
	} else {
		b.WriteString(" · all mailboxes")
	}
	if len(p.ExcludeGroups) > 0 {
		fmt.Fprintf(&b, " · %d excluded", len(p.ExcludeGroups))
	}
	if len(p.PlatformExceptions) > 0 {
		fmt.Fprintf(&b, " · %d exception(s)", len(p.PlatformExceptions))
	}
	if p.GracePeriod > 0 {
		fmt.Fprintf(&b, " · grace %s", p.GracePeriod)
	}
	return b.String()
}

// newRunID returns a sortable, unique run ID.
func (e *Engine) newRunID(now time.Time) string {
	e.mu.Lock()
	e.runSeq++
	n := e.runSeq
	e.mu.Unlock()
	return fmt.Sprintf("%s-%03d", now.UTC().Format("20060102T150405.000Z"), n%1000)
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func summary(p *Plan) *PlanSummary {
	if p == nil {
		return nil
	}
	return p.Summary()
}
