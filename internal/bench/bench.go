package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"easgate/engine/sim"
)

// Scenarios a size is measured in, in the order they run on one
// organisation.
const (
	FirstFull  = "first full sync"  // a fresh store: every device is new, many changes
	SteadyFull = "steady full sync" // right after: few or no changes
	QuickChurn = "quick sync"       // after churn
)

// Options say what to measure.
type Options struct {
	// Binary is the easgate executable to run.
	Binary string
	// SyncBinary, when set, runs the syncs instead of Binary (which still
	// runs the simulators): to measure another build of easgate, such as
	// an older commit, under the same simulators.
	SyncBinary string `json:",omitempty"`
	// Dir holds each run's simulator directory and store; they are removed
	// after each organisation unless Keep.
	Dir  string
	Keep bool
	// Sizes are the organisations' mailbox counts.
	Sizes []int
	Seed  uint64
	// CostScale is the cost model's scale for the timed runs (1 = real
	// time); zero skips them.
	CostScale float64
	// NoCost also measures every size without the cost model, for CPU
	// time, memory and store size.
	NoCost bool
	// Parallel and ApplyBatch go into the simulators' config (0: easgate's
	// defaults).
	Parallel   int
	ApplyBatch int
	// ChurnPercent is the churn before the quick sync, in percent of the
	// mailboxes.
	ChurnPercent float64
	// Repeat runs every measurement this many times.
	Repeat int
	// BaselineSample is the organisation size the per-mailbox baseline is
	// measured at, under the cost model; 0 skips the baseline.
	BaselineSample int
	// Env is added to the sync processes' environment (e.g. GOMEMLIMIT).
	Env []string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Result is one measured sync.
type Result struct {
	Users    int     `json:"users"`
	Scenario string  `json:"scenario"`
	Scale    float64 `json:"scale"` // 0: no cost model
	Round    int     `json:"round"`
	Measure
	Starts        int64 `json:"starts"`          // powershell.exe processes
	WinRMRequests int64 `json:"winrm_requests"`  // WinRM round trips
	GraphRequests int   `json:"graph_requests"`  // Graph and token requests
	SMTPTLS       int64 `json:"smtp_tls"`        // SMTP sessions over TLS (TLS handshakes)
	Mails         int64 `json:"mails"`           // messages the SMTP sink accepted
	RemoteBusy    int64 `json:"remote_busy_ns"`  // what the Exchange cost model slept, summed over processes
	EASDevices    int   `json:"eas_devices"`     // run summary counts
	MDMDevices    int   `json:"mdm_devices"`     //
	Changes       int   `json:"changes_applied"` //
	Notifications int   `json:"notifications"`   //
	Work          Work  `json:"work"`            // the unavoidable remote work
	Floor         Floor `json:"floor"`           // zero without the cost model
	Problems      int   `json:"problems"`
}

// Baseline is the per-mailbox baseline, measured at one size.
type Baseline struct {
	BaselineResult
	Users    int           `json:"users"`
	Scale    float64       `json:"scale"`
	Work     Work          `json:"work"`
	Modelled time.Duration `json:"modelled"` // BaselineModel of its work
}

// Report is everything one bench measured.
type Report struct {
	Machine   Machine    `json:"machine"`
	Started   time.Time  `json:"started"`
	Took      string     `json:"took"`
	Options   Options    `json:"options"`
	Results   []Result   `json:"results"`
	Baselines []Baseline `json:"baselines"`
}

// Run measures what opt asks for.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Binary == "" {
		return nil, errors.New("bench: no easgate binary")
	}
	if opt.Repeat < 1 {
		opt.Repeat = 1
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	if opt.ChurnPercent <= 0 {
		opt.ChurnPercent = 1
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("bench directory: %w", err)
	}
	rep := &Report{Machine: machine(opt.syncBinary()), Started: time.Now().UTC(), Options: opt}
	var scales []float64
	if opt.CostScale > 0 {
		scales = append(scales, opt.CostScale)
	}
	if opt.NoCost {
		scales = append(scales, 0)
	}
	for _, users := range opt.Sizes {
		for _, scale := range scales {
			for round := range opt.Repeat {
				res, err := measureOrg(ctx, opt, users, scale, round)
				rep.Results = append(rep.Results, res...)
				if err != nil {
					return rep, err
				}
			}
		}
	}
	if opt.BaselineSample > 0 && opt.CostScale > 0 {
		for round := range opt.Repeat {
			b, err := measureBaseline(ctx, opt, opt.BaselineSample, round)
			if err != nil {
				return rep, err
			}
			rep.Baselines = append(rep.Baselines, *b)
		}
	}
	rep.Took = time.Since(rep.Started).Round(time.Second).String()
	return rep, nil
}

func (o Options) syncBinary() string {
	if o.SyncBinary != "" {
		return o.SyncBinary
	}
	return o.Binary
}

func logf(opt Options, format string, a ...any) {
	fmt.Fprintf(opt.Log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// measureOrg measures the three scenarios on one fresh organisation.
func measureOrg(ctx context.Context, opt Options, users int, scale float64, round int) ([]Result, error) {
	dir := filepath.Join(opt.Dir, fmt.Sprintf("org-%d-scale-%g-round-%d", users, scale, round+1))
	_ = os.RemoveAll(dir)
	if !opt.Keep {
		defer os.RemoveAll(dir)
	}
	logf(opt, "%d mailboxes, cost scale %g, round %d: starting the simulators", users, scale, round+1)
	sp, err := startSim(ctx, opt.Binary, SimOptions{Users: users, Seed: opt.Seed, CostScale: scale, Parallel: opt.Parallel,
		ApplyBatch: opt.ApplyBatch, Dir: dir})
	if err != nil {
		return nil, err
	}
	defer sp.close()
	model := Model{Scale: scale, Parallel: opt.Parallel}
	before, err := sp.counters()
	if err != nil {
		return nil, err
	}
	base := Work{Devices: before.Org.Partnerships, Mailboxes: before.MailboxesWithDevices, ManagedDevices: before.Org.Managed}

	var out []Result
	step := func(scenario string, w Work, args ...string) error {
		logf(opt, "%d mailboxes, cost scale %g, round %d: %s", users, scale, round+1, scenario)
		run, err := runSync(ctx, opt.syncBinary(), sp.info.ConfigFile, storePath(dir), opt.Env, args...)
		if err != nil {
			return fmt.Errorf("%d mailboxes, %s: %w", users, scenario, err)
		}
		after, err := sp.counters()
		if err != nil {
			return err
		}
		r := resultOf(users, scenario, scale, round, run, before, after)
		w.Edits, w.Changes = int(r.workDelta.Edits), int(r.workDelta.EditIDs)
		r.Work = w
		if scale > 0 {
			r.Floor = model.Floor(w)
		}
		out = append(out, r.Result)
		logf(opt, "  %s", r.Result.line())
		before = after
		return nil
	}
	if err := step(FirstFull, base); err != nil {
		return out, err
	}
	if err := step(SteadyFull, base); err != nil {
		return out, err
	}
	churn, err := sp.churn(sim.ChurnOf(users, opt.ChurnPercent, round+1))
	if err != nil {
		return out, err
	}
	if before, err = sp.counters(); err != nil {
		return out, err
	}
	quick := Work{Devices: churn.New, Mailboxes: churn.New, ManagedDevices: churn.Compliance + churn.Enroll, Quick: true}
	if err := step(QuickChurn, quick, "--quick"); err != nil {
		return out, err
	}
	return out, nil
}

// measured is a Result with the simulators' work behind it.
type measured struct {
	Result
	workDelta struct{ Edits, EditIDs int64 }
}

func resultOf(users int, scenario string, scale float64, round int, run *syncRun, before, after sim.Counters) measured {
	s := run.Summary.Counts
	m := measured{Result: Result{Users: users, Scenario: scenario, Scale: scale, Round: round + 1, Measure: run.Measure,
		Starts:        after.Exchange.Starts - before.Exchange.Starts,
		WinRMRequests: after.WinRM.Requests - before.WinRM.Requests,
		GraphRequests: after.Graph.Requests - before.Graph.Requests,
		SMTPTLS:       after.SMTP.TLSSessions - before.SMTP.TLSSessions,
		Mails:         after.SMTP.Messages - before.SMTP.Messages,
		RemoteBusy:    int64(after.Exchange.Busy - before.Exchange.Busy),
		EASDevices:    s.EASDevices, MDMDevices: s.MDMDevices, Changes: s.ChangesApplied, Notifications: s.NotificationsSent,
		Problems: len(run.Summary.Problems)}}
	m.workDelta.Edits = after.Exchange.Work.Edits - before.Exchange.Work.Edits
	m.workDelta.EditIDs = after.Exchange.Work.EditIDs - before.Exchange.Work.EditIDs
	return m
}

// line summarises a result for the progress log.
func (r Result) line() string {
	s := fmt.Sprintf("wall %s cpu %s rss %s (anon %s, file %s) store %s written %s; starts %d, winrm %d, graph %d, smtp-tls %d; changes %d, mails %d",
		secs(r.Wall), secs(r.CPU), mib(r.MaxRSS), mib(r.AnonRSS), mib(r.FileRSS), mib(r.Store), mib(r.Written), r.Starts, r.WinRMRequests,
		r.GraphRequests, r.SMTPTLS, r.Changes, r.Notifications)
	if r.Floor.Total > 0 {
		s += fmt.Sprintf("; floor %s (×%.2f)", secs(r.Floor.Total), r.Wall.Seconds()/r.Floor.Total.Seconds())
	}
	return s
}

// measureBaseline runs the per-mailbox baseline on a fresh organisation
// of users mailboxes, under the cost model: the changes are those of
// easgate's first full sync of the same organisation (a dry run computes
// them, before the baseline's clock starts).
func measureBaseline(ctx context.Context, opt Options, users, round int) (*Baseline, error) {
	dir := filepath.Join(opt.Dir, fmt.Sprintf("baseline-%d-round-%d", users, round+1))
	_ = os.RemoveAll(dir)
	if !opt.Keep {
		defer os.RemoveAll(dir)
	}
	logf(opt, "baseline, %d mailboxes, round %d: starting the simulators", users, round+1)
	sp, err := startSim(ctx, opt.Binary, SimOptions{Users: users, Seed: opt.Seed, CostScale: opt.CostScale, Parallel: opt.Parallel,
		ApplyBatch: opt.ApplyBatch, Dir: dir})
	if err != nil {
		return nil, err
	}
	defer sp.close()
	dry, err := runSync(ctx, opt.syncBinary(), sp.info.ConfigFile, storePath(dir), opt.Env, "--dry-run")
	if err != nil {
		return nil, fmt.Errorf("baseline plan: %w", err)
	}
	if dry.Summary.Plan == nil {
		return nil, errors.New("baseline plan: the dry run printed no plan")
	}
	b, err := newBaseliner(sp.info, opt.Parallel)
	if err != nil {
		return nil, err
	}
	before, err := sp.counters()
	if err != nil {
		return nil, err
	}
	res := &Baseline{Users: users, Scale: opt.CostScale}
	start := time.Now()
	logf(opt, "baseline, %d mailboxes: reading every mailbox in a process of its own", users)
	if err := b.inventory(ctx, &res.BaselineResult); err != nil {
		return nil, fmt.Errorf("baseline inventory: %w", err)
	}
	logf(opt, "baseline, %d mailboxes: making %d changes, each in a process of its own", users, len(dry.Summary.Plan.Changes))
	if err := b.apply(ctx, dry.Summary.Plan.Changes, &res.BaselineResult); err != nil {
		return nil, fmt.Errorf("baseline apply: %w", err)
	}
	res.Total = time.Since(start)
	after, err := sp.counters()
	if err != nil {
		return nil, err
	}
	res.Starts = after.Exchange.Starts - before.Exchange.Starts
	res.Work = Work{Devices: before.Org.Partnerships, Mailboxes: before.MailboxesWithDevices, Changes: res.Changes,
		Edits: res.Changes, ManagedDevices: before.Org.Managed}
	res.Modelled = Model{Scale: opt.CostScale, Parallel: opt.Parallel}.BaselineModel(res.Work)
	logf(opt, "  baseline: inventory %s, apply %s, total %s (modelled %s), %d starts", secs(res.Inventory), secs(res.Apply),
		secs(res.Total), secs(res.Modelled), res.Starts)
	return res, nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.0fMB", float64(b)/(1<<20)) }
