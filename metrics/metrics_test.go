package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"easgate/engine"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// eventAPI is the engine edge of the metrics: a status, a run history, a
// journal and an event stream the test drives. Everything else is unused.
type eventAPI struct {
	engine.API // nil: calling anything else panics, which the test would show
	mu         sync.Mutex
	status     engine.Status
	history    []engine.Run
	journal    []engine.JournalEntry
	events     chan engine.Event
}

func (a *eventAPI) Status(context.Context) (engine.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, nil
}

func (a *eventAPI) Runs(context.Context, int) ([]engine.Run, error) { return a.history, nil }

func (a *eventAPI) Journal(_ context.Context, q engine.JournalQuery) ([]engine.JournalEntry, error) {
	var out []engine.JournalEntry
	for _, j := range a.journal {
		if j.RunID == q.RunID {
			out = append(out, j)
		}
	}
	return out, nil
}

func (a *eventAPI) Subscribe(ctx context.Context) (<-chan engine.Event, error) {
	out := make(chan engine.Event)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-a.events:
				out <- ev
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// scrape fetches the metrics over HTTP and parses them as Prometheus does.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the family's series with the given labels
// (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsFollowRunsStatusAndCalls(t *testing.T) {
	earlier := engine.Run{ID: "r0", Kind: engine.RunFull, Status: engine.StatusSucceeded, Started: t0.Add(-time.Hour), Finished: t0.Add(-59 * time.Minute)}
	api := &eventAPI{
		events:  make(chan engine.Event),
		history: []engine.Run{earlier},
		status: engine.Status{
			Counts:   engine.Counts{EASDevices: 10, MDMDevices: 7, Merged: 6, Unmerged: 4, Allowed: 5, Blocked: 3, Quarantined: 1, Exempt: 1},
			HeldPlan: &engine.PlanSummary{ID: "p", Brake: &engine.Brake{NewBlocks: 60, Limit: 50}},
			Running:  &engine.Progress{Phase: engine.PhaseApply},
			Exchange: []engine.Health{{Name: "ex01", OK: false, LastCall: t0}, {Name: "ex02", OK: true, LastCall: t0}, {Name: "ex03"}},
			Intune:   engine.Health{Name: "Microsoft Graph", OK: true, LastCall: t0},
			Pending:  2,
		},
		journal: []engine.JournalEntry{
			{Seq: 11, RunID: "r1", Kind: engine.JournalNotify, OK: true},
			{Seq: 12, RunID: "r1", Kind: engine.JournalNotify, OK: false},
			{Seq: 13, RunID: "r1", Kind: engine.JournalChange, Stage: engine.StageEnd, OK: false},
		},
	}
	m := New(nil)
	m.ObserveCall("exchange", "inventory", 2*time.Second, nil)
	m.ObserveCall("graph", "/deviceManagement/managedDevices", 300*time.Millisecond, errors.New("429"))
	m.ObserveCall("graph", "/deviceManagement/managedDevices", 100*time.Millisecond, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Watch(ctx, api) }()
	finished := engine.Run{ID: "r1", Kind: engine.RunQuick, Status: engine.StatusSucceeded, Started: t0, Finished: t0.Add(90 * time.Second),
		Phases: []engine.PhaseTiming{{Name: engine.PhaseApply, Duration: time.Minute}, {Name: engine.PhasePlan, Duration: time.Second}},
		Counts: engine.Counts{ChangesApplied: 8, ChangesFailed: 1, NotificationsSent: 1}, JournalFirst: 11, JournalLast: 13}
	api.events <- engine.Event{Kind: engine.EventProgress}
	api.events <- engine.Event{Kind: engine.EventRunFinished, Run: &finished}
	dry := engine.Run{ID: "r2", Kind: engine.RunFull, Status: engine.StatusDryRun, Started: t0, Finished: t0.Add(2 * time.Minute),
		Counts: engine.Counts{ChangesPlanned: 40}}
	api.events <- engine.Event{Kind: engine.EventRunFinished, Run: &dry}
	api.events <- engine.Event{Kind: engine.EventState} // the dry run's event has been handled once this is taken

	fams := scrape(t, m.Handler())
	tests := []struct {
		name   string
		metric string
		labels []string
		want   float64
	}{
		{"runs by kind and status", "easgate_runs_total", []string{"kind", "quick", "status", "succeeded"}, 1},
		{"dry runs count as runs", "easgate_runs_total", []string{"kind", "full", "status", "dry-run"}, 1},
		{"failed runs start at zero", "easgate_runs_total", []string{"kind", "full", "status", "failed"}, 0},
		{"run duration observed", "easgate_run_duration_seconds", []string{"kind", "quick"}, 1},
		{"phase duration observed", "easgate_run_phase_duration_seconds", []string{"phase", "apply"}, 1},
		{"phase not run yet", "easgate_run_phase_duration_seconds", []string{"phase", "notify"}, 0},
		{"changes applied", "easgate_changes_total", []string{"result", "applied"}, 8},
		{"changes failed", "easgate_changes_total", []string{"result", "failed"}, 1},
		{"notifications sent", "easgate_notifications_total", []string{"result", "sent"}, 1},
		{"notifications failed, from the journal", "easgate_notifications_total", []string{"result", "failed"}, 1},
		{"exchange calls", "easgate_remote_call_duration_seconds", []string{"system", "exchange", "op", "inventory"}, 1},
		{"graph calls", "easgate_remote_call_duration_seconds", []string{"system", "graph"}, 2},
		{"graph errors", "easgate_remote_call_errors_total", []string{"system", "graph"}, 1},
		{"last success is the newest", "easgate_last_success_timestamp_seconds", nil, float64(finished.Finished.Unix())},
		{"last run includes dry runs", "easgate_last_run_timestamp_seconds", nil, float64(dry.Finished.Unix())},
		{"blocked devices", "easgate_devices", []string{"state", "blocked"}, 3},
		{"unmerged devices", "easgate_devices", []string{"state", "unmerged"}, 4},
		{"eas devices", "easgate_eas_devices", nil, 10},
		{"mdm devices", "easgate_mdm_devices", nil, 7},
		{"brake held", "easgate_brake_held", nil, 1},
		{"brake new blocks", "easgate_brake_new_blocks", nil, 60},
		{"pending notifications", "easgate_notifications_pending", nil, 2},
		{"sync running", "easgate_sync_running", nil, 1},
		{"exchange server down", "easgate_remote_up", []string{"system", "exchange", "name", "ex01"}, 0},
		{"exchange server up", "easgate_remote_up", []string{"system", "exchange", "name", "ex02"}, 1},
		{"graph up", "easgate_remote_up", []string{"system", "graph"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := value(fams, tt.metric, tt.labels...)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
	if _, ok := value(fams, "easgate_remote_up", "name", "ex03"); ok {
		t.Error("a server never called reports up or down")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("watch ended with %v, want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end with its context")
	}
}

func TestStatusGaugesWaitForAnEngine(t *testing.T) {
	fams := scrape(t, New(nil).Handler())
	if _, ok := fams["easgate_devices"]; ok {
		t.Error("device gauges before Watch attached an engine")
	}
	if v, ok := value(fams, "easgate_runs_total", "kind", "full", "status", "succeeded"); !ok || v != 0 {
		t.Errorf("runs_total before any run = %v (present %v), want a zero series", v, ok)
	}
}
