package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"easgate/engine"
)

// namespace prefixes every metric name.
const namespace = "easgate"

// Label names.
const (
	labelKind   = "kind"
	labelStatus = "status"
	labelPhase  = "phase"
	labelResult = "result"
	labelState  = "state"
	labelSystem = "system"
	labelOp     = "op"
	labelName   = "name"
)

// Log attribute keys.
const (
	attrErr = "err"
	attrRun = "run"
)

// statusTimeout bounds the engine.Status call a scrape makes.
const statusTimeout = 5 * time.Second

// Metrics holds easgate's metrics and the registry they are served from.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	runs          *prometheus.CounterVec
	runDuration   *prometheus.HistogramVec
	phaseDuration *prometheus.HistogramVec
	changes       *prometheus.CounterVec
	notifications *prometheus.CounterVec
	callDuration  *prometheus.HistogramVec
	callErrors    *prometheus.CounterVec

	mu          sync.Mutex
	api         engine.API // set by Watch; the status gauges need it
	lastSuccess time.Time
	lastRun     time.Time
}

var _ engine.CallObserver = (*Metrics)(nil)

// New registers easgate's metrics, with the Go runtime's and the process's,
// in a registry of their own.
func New(log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: log.With("subsystem", "metrics")}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "runs_total",
		Help: "Sync runs that ended, by kind (full, quick) and status (succeeded, failed, braked, dry-run).",
	}, []string{labelKind, labelStatus})
	m.runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "run_duration_seconds",
		Help:    "How long sync runs took, by kind.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14), // 0.5 s … ~68 min
	}, []string{labelKind})
	m.phaseDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "run_phase_duration_seconds",
		Help:    "How long each phase of a sync run took (observe-exchange, observe-intune, plan, apply, notify, save).",
		Buckets: prometheus.ExponentialBuckets(0.01, 3, 12), // 10 ms … ~30 min
	}, []string{labelPhase})
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "changes_total",
		Help: "Allow/block list changes the runs made in Exchange, by result (applied, failed).",
	}, []string{labelResult})
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "notifications_total",
		Help: "Enrollment notifications the runs sent, by result (sent, failed).",
	}, []string{labelResult})
	m.callDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "remote_call_duration_seconds",
		Help:    "Calls to remote systems (system: exchange, graph, smtp; op: the script, Graph path or operation), failed ones included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12), // 5 ms … ~5 min
	}, []string{labelSystem, labelOp})
	m.callErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "remote_call_errors_total",
		Help: "Calls to remote systems that failed, by system and op.",
	}, []string{labelSystem, labelOp})
	lastSuccess := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "last_success_timestamp_seconds",
		Help: "When the last sync run that succeeded ended (Unix time); 0 before the first.",
	}, func() float64 { return m.timestamp(&m.lastSuccess) })
	lastRun := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "last_run_timestamp_seconds",
		Help: "When the last sync run ended, whatever its status (Unix time); 0 before the first.",
	}, func() float64 { return m.timestamp(&m.lastRun) })
	m.reg.MustRegister(m.runs, m.runDuration, m.phaseDuration, m.changes, m.notifications, m.callDuration, m.callErrors,
		lastSuccess, lastRun, &statusCollector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Series that exist from the start, so that rates and alerts work
	// before the first run ends.
	for _, k := range []engine.RunKind{engine.RunFull, engine.RunQuick} {
		for _, s := range []engine.RunStatus{engine.StatusSucceeded, engine.StatusFailed, engine.StatusBraked, engine.StatusDryRun} {
			m.runs.WithLabelValues(string(k), string(s))
		}
		m.runDuration.WithLabelValues(string(k))
	}
	for _, p := range []string{engine.PhaseObserveExchange, engine.PhaseObserveIntune, engine.PhasePlan, engine.PhaseApply, engine.PhaseNotify, engine.PhaseSave} {
		m.phaseDuration.WithLabelValues(p)
	}
	m.changes.WithLabelValues("applied")
	m.changes.WithLabelValues("failed")
	m.notifications.WithLabelValues("sent")
	m.notifications.WithLabelValues("failed")
	return m
}

// Registry returns the registry, for tests and for serving elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ObserveCall records one call an adapter made to a remote system.
func (m *Metrics) ObserveCall(system, op string, d time.Duration, err error) {
	m.callDuration.WithLabelValues(system, op).Observe(d.Seconds())
	if err != nil {
		m.callErrors.WithLabelValues(system, op).Inc()
	}
}

// Watch feeds the metrics from api until ctx ends: the run history's last
// success first, then every run that finishes, from the event stream. The
// status gauges read api from then on.
func (m *Metrics) Watch(ctx context.Context, api engine.API) error {
	m.mu.Lock()
	m.api = api
	m.mu.Unlock()
	events, err := api.Subscribe(ctx)
	if err != nil {
		return err
	}
	if runs, err := api.Runs(ctx, 100); err == nil {
		for i := len(runs) - 1; i >= 0; i-- {
			m.noteTimes(&runs[i])
		}
	} else {
		m.log.Warn("cannot read the run history", attrErr, err)
	}
	for ev := range events {
		if ev.Kind == engine.EventRunFinished && ev.Run != nil {
			m.runFinished(ctx, api, ev.Run)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("the engine's event stream ended")
}

// noteTimes moves the last-run times to r's end, if it ended later.
func (m *Metrics) noteTimes(r *engine.Run) {
	if r.Finished.IsZero() || r.Status == engine.StatusRunning {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Finished.After(m.lastRun) {
		m.lastRun = r.Finished
	}
	if r.Status == engine.StatusSucceeded && r.Finished.After(m.lastSuccess) {
		m.lastSuccess = r.Finished
	}
}

// timestamp reads one of the last-run times as Unix seconds.
func (m *Metrics) timestamp(t *time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// runFinished records a run that ended.
func (m *Metrics) runFinished(ctx context.Context, api engine.API, r *engine.Run) {
	m.runs.WithLabelValues(string(r.Kind), string(r.Status)).Inc()
	m.runDuration.WithLabelValues(string(r.Kind)).Observe(r.Duration().Seconds())
	for _, p := range r.Phases {
		m.phaseDuration.WithLabelValues(p.Name).Observe(p.Duration.Seconds())
	}
	m.noteTimes(r)
	if r.Status == engine.StatusDryRun || r.Status == engine.StatusBraked {
		return // nothing was applied or sent
	}
	m.changes.WithLabelValues("applied").Add(float64(r.Counts.ChangesApplied))
	m.changes.WithLabelValues("failed").Add(float64(r.Counts.ChangesFailed))
	m.notifications.WithLabelValues("sent").Add(float64(r.Counts.NotificationsSent))
	// The run's counts do not say how many notifications failed; its
	// journal does.
	if r.JournalFirst == 0 {
		return
	}
	entries, err := api.Journal(ctx, engine.JournalQuery{FromSeq: r.JournalFirst, ToSeq: r.JournalLast, RunID: r.ID})
	if err != nil {
		m.log.Warn("cannot read a run's journal for its failed notifications", attrRun, r.ID, attrErr, err)
		return
	}
	failed := 0
	for _, j := range entries {
		if j.Kind == engine.JournalNotify && !j.OK {
			failed++
		}
	}
	m.notifications.WithLabelValues("failed").Add(float64(failed))
}
