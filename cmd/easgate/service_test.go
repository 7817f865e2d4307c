package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"easgate/engine"
	"easgate/engine/sim"
	"easgate/store"
)

// service is `easgate run` running as a subprocess, logging JSON to stdout.
type service struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	log   bytes.Buffer // every line it wrote
	ready map[string]any
	done  chan error
}

// startService starts `easgate run` on cfg and waits for it to be ready.
func startService(t *testing.T, cfg string) *service {
	t.Helper()
	s := &service{cmd: exec.Command(binary, "run", "--config", cfg, "--log-format", "json"), done: make(chan error, 1)}
	s.cmd.Env = append(os.Environ(), "EASGATE_CONFIG=")
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &lockedWriter{mu: &s.mu, w: &s.log}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.log.Write(append(sc.Bytes(), '\n'))
			s.mu.Unlock()
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "service ready" {
				ready <- line
			}
		}
		s.done <- s.cmd.Wait()
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
		}
	})
	select {
	case s.ready = <-ready:
	case err := <-s.done:
		t.Fatalf("easgate run exited before it was ready: %v\n%s", err, s.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("easgate run not ready within 30s\n%s", s.logs())
	}
	return s
}

func (s *service) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop sends SIGTERM and returns the exit code.
func (s *service) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("easgate run did not stop within 60s of SIGTERM\n%s", s.logs())
		return -1
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// appendConfig adds text to the simulator's config file.
func appendConfig(t *testing.T, s *sim.Sim, text string) {
	t.Helper()
	f, err := os.OpenFile(s.Info.ConfigFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// runsJSON runs `easgate runs --output json`.
func runsJSON(t *testing.T, cfg string) []engine.Run {
	t.Helper()
	r := run(t, "runs", "--config", cfg, "--output", "json")
	if r.code != 0 {
		t.Fatalf("runs: exit %d: %s", r.code, r.stderr)
	}
	var runs []engine.Run
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		t.Fatalf("runs output: %v\n%s", err, r.stdout)
	}
	return runs
}

// waitFor polls cond every 100 ms until it holds or the time is up.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServiceAttachStopAndRestart is the service's acceptance test: easgate
// run as a subprocess, the CLI and a console attached through its socket,
// SIGTERM in the middle of an apply, and a restart that converges.
func TestServiceAttachStopAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs easgate run as a subprocess through a slow apply; takes seconds")
	}
	// The reference: the same organisation synced without interruption.
	ref := startSim(t, 150, 11)
	if r := run(t, "sync", "--config", ref.Info.ConfigFile); r.code != 0 {
		t.Fatalf("reference sync: exit %d: %s", r.code, r.stderr)
	}
	want := exchangeLists(ref)

	s := startSim(t, 150, 11)
	cfg := s.Info.ConfigFile
	smallBatches(t, s)
	slowApply(s, 150*time.Millisecond)
	appendConfig(t, s, "metrics:\n  listen: 127.0.0.1:0\n")
	before := len(exchangeLists(s))
	svc := startService(t, cfg)
	if fi, err := os.Lstat(filepath.Join(s.Dir, "easgate.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket: %v, want mode 0600", err)
	}

	// While the start-up sync applies, the store is the service's: the CLI
	// goes through the socket (opening the store would exit 3).
	runsJSON(t, cfg)
	if r := run(t, "devices", "--config", cfg, "--output", "json"); r.code != 0 || !json.Valid([]byte(r.stdout)) {
		t.Errorf("devices through the socket: exit %d: %s%s", r.code, r.stderr, r.stdout)
	}
	waitFor(t, "apply reaching Exchange", 30*time.Second, func() bool { return len(exchangeLists(s)) > before+10 })
	if code := svc.stop(t); code != 0 {
		t.Errorf("easgate run exited %d after SIGTERM\n%s", code, svc.logs())
	}
	partial := exchangeLists(s)
	if len(partial) >= len(want) {
		t.Fatalf("SIGTERM came too late: %d of %d entries already made", len(partial), len(want))
	}
	if _, err := os.Lstat(filepath.Join(s.Dir, "easgate.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind after a clean stop: %v", err)
	}

	// The run record and the journal show a clean stop.
	st, err := store.Open(filepath.Join(s.Dir, "easgate.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.Runs(t.Context(), 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("run history: %d runs, %v; want the stopped start-up run", len(runs), err)
	}
	stopped := runs[0]
	if stopped.Status != engine.StatusFailed || stopped.Trigger != engine.TriggerStartup || !strings.Contains(stopped.Error, "cancelled") ||
		!strings.Contains(stopped.Error, "terminated") {
		t.Errorf("stopped run recorded as %s/%s: %q; want failed, cancelled by the signal", stopped.Trigger, stopped.Status, stopped.Error)
	}
	t.Logf("stopped run: %s; %d of %d entries made", stopped.Error, len(partial), len(want))
	journal, err := st.Journal(t.Context(), engine.JournalQuery{RunID: stopped.ID})
	if err != nil {
		t.Fatal(err)
	}
	begun := map[string]int{}
	for _, j := range journal {
		if j.Kind != engine.JournalChange || j.Change == nil {
			continue
		}
		k := fmt.Sprintf("%s|%s|%s", j.Device, j.Change.List, j.Change.Op)
		if j.Stage == engine.StageBegin {
			begun[k]++
		} else {
			begun[k]--
		}
	}
	open := 0
	for _, n := range begun {
		open += n
	}
	if len(begun) == 0 || open != 0 {
		t.Errorf("journal of the stopped run: %d changes, %d begun without an end", len(begun), open)
	}
	_ = st.Close()

	// The next start carries on and converges: Exchange ends up as an
	// uninterrupted run leaves it, and nothing was "interrupted".
	slowApply(s, 0)
	svc = startService(t, cfg)
	var restarted []engine.Run
	waitFor(t, "the start-up sync after the restart", 60*time.Second, func() bool {
		restarted = runsJSON(t, cfg)
		return len(restarted) == 2 && restarted[0].Status != engine.StatusRunning
	})
	if r := restarted[0]; r.Status != engine.StatusSucceeded || r.Trigger != engine.TriggerStartup {
		t.Errorf("start-up run after the restart: %s/%s %q", r.Trigger, r.Status, r.Error)
	}
	if got := exchangeLists(s); !slices.Equal(got, want) {
		t.Errorf("after the restart Exchange holds %d entries, an uninterrupted run %d", len(got), len(want))
	}
	for _, r := range restarted {
		if strings.Contains(r.Error, "interrupted") {
			t.Errorf("run %s recorded as interrupted after a clean stop: %q", r.ID, r.Error)
		}
	}

	// The CLI through the socket: a sync finds nothing to do and is
	// recorded with the OS user who asked.
	r := run(t, "sync", "--config", cfg, "--output", "json")
	var sum syncJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sum) != nil || sum.Run.Status != engine.StatusSucceeded || sum.Counts.ChangesPlanned != 0 {
		t.Errorf("sync through the socket: exit %d, %+v: %s", r.code, sum, r.stderr)
	}
	if runs := runsJSON(t, cfg); len(runs) != 3 || runs[0].Actor != actor() || runs[0].Trigger != engine.TriggerManual {
		t.Errorf("the CLI's sync is recorded as by %q (%d runs); want %q", runs[0].Actor, len(runs), actor())
	}
	r = run(t, "devices", "--config", cfg, "--state", "blocked", "--output", "json")
	var devs []engine.DeviceJSON
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &devs) != nil || len(devs) == 0 {
		t.Errorf("devices --state blocked through the socket: exit %d, %d devices: %s", r.code, len(devs), r.stderr)
	}
	if r := run(t, "check", "--config", cfg); r.code != nagiosOK || !strings.HasPrefix(r.stdout, "EASGATE OK - ") {
		t.Errorf("check through the socket: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}

	// Store maintenance through the socket.
	backup := filepath.Join(t.TempDir(), "backup.db")
	if r := run(t, "store", "backup", "--config", cfg, backup); r.code != 0 || !strings.Contains(r.stdout, "control socket") {
		t.Errorf("store backup: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if bst, err := store.Open(backup, store.Options{ReadOnly: true}); err != nil {
		t.Errorf("the backup does not open: %v", err)
	} else {
		if runs, _ := bst.Runs(t.Context(), 10); len(runs) != 3 {
			t.Errorf("the backup holds %d runs, want 3", len(runs))
		}
		_ = bst.Close()
	}
	if r := run(t, "store", "check", "--config", cfg); r.code != 0 {
		t.Errorf("store check: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "store", "compact", "--config", cfg); r.code != exitInUse || !strings.Contains(r.stderr, "stop the service") {
		t.Errorf("store compact while the service runs: exit %d: %s", r.code, r.stderr)
	}

	// Metrics, as Prometheus scrapes them.
	scrapeMetrics(t, svc.ready["metrics"].(string))

	// A console session on a real terminal, through the socket.
	consoleInTmux(t, cfg)

	if code := svc.stop(t); code != 0 {
		t.Errorf("easgate run exited %d after SIGTERM", code)
	}
	if strings.Contains(svc.logs(), `"level":"ERROR"`) {
		t.Errorf("the service logged errors:\n%s", svc.logs())
	}
}

// scrapeMetrics reads the metrics endpoint and checks it parses and carries
// every family the issue asks for.
func scrapeMetrics(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the metrics do not parse: %v", err)
	}
	for _, name := range []string{
		"easgate_run_phase_duration_seconds", "easgate_run_duration_seconds", "easgate_runs_total", "easgate_devices",
		"easgate_eas_devices", "easgate_changes_total", "easgate_notifications_total", "easgate_remote_call_duration_seconds",
		"easgate_brake_held", "easgate_last_success_timestamp_seconds", "easgate_remote_up",
	} {
		if fams[name] == nil {
			t.Errorf("metrics lack %s", name)
		}
	}
	systems := map[string]bool{}
	for _, m := range fams["easgate_remote_call_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "system" && m.GetHistogram().GetSampleCount() > 0 {
				systems[l.GetValue()] = true
			}
		}
	}
	if !systems["exchange"] || !systems["graph"] {
		t.Errorf("remote calls observed for %v; want exchange and graph", systems)
	}
	for _, m := range fams["easgate_runs_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["kind"] == "full" && labels["status"] == "succeeded" && m.GetCounter().GetValue() < 2 {
			t.Errorf("runs_total{full,succeeded} = %v, want the start-up run and the CLI's", m.GetCounter().GetValue())
		}
	}
	if v := fams["easgate_last_success_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue(); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("last success at %v, want within the last minute", time.Unix(int64(v), 0))
	}
}

// consoleInTmux runs `easgate tui` in a tmux pane, starts a full sync with
// s and quits with q; the run must reach the service under the OS user.
func consoleInTmux(t *testing.T, cfg string) {
	t.Helper()
	tmuxBin, err := exec.LookPath("tmux")
	if err != nil {
		t.Log("tmux not installed: the console through the socket is covered by TestConsoleThroughTheSocket only")
		return
	}
	sock := filepath.Join(t.TempDir(), "tmux") // a server of our own, gone with the test
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command(tmuxBin, append([]string{"-S", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = tmux("kill-server") })
	before := len(runsJSON(t, cfg))
	if out, err := tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "32",
		fmt.Sprintf("EASGATE_CONFIG= %s tui --config %s", binary, cfg)); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	pane := func() string {
		out, _ := tmux("capture-pane", "-p", "-t", "console")
		return out
	}
	waitFor(t, "the console's first screen", 20*time.Second, func() bool { return strings.Contains(pane(), "easgate") })
	if out, err := tmux("send-keys", "-t", "console", "s"); err != nil {
		t.Fatalf("send s: %v %s", err, out)
	}
	var runs []engine.Run
	waitFor(t, "the console's sync", 30*time.Second, func() bool {
		runs = runsJSON(t, cfg)
		return len(runs) > before && runs[0].Status != engine.StatusRunning
	})
	if r := runs[0]; r.Trigger != engine.TriggerManual || r.Actor != actor() || r.Status != engine.StatusSucceeded {
		t.Errorf("the console's run: %s by %q, %s; want manual by %q, succeeded\n%s", r.Trigger, r.Actor, r.Status, actor(), pane())
	}
	t.Logf("console after its sync:\n%s", pane())
	if out, err := tmux("send-keys", "-t", "console", "q"); err != nil {
		t.Fatalf("send q: %v %s", err, out)
	}
	waitFor(t, "the console to quit", 10*time.Second, func() bool {
		_, err := tmux("has-session", "-t", "console")
		return err != nil
	})
}
