package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"easgate/engine"
	"easgate/store"
)

// binary is the easgate binary the CLI tests run, built once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "easgate-cli-*")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "easgate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the easgate binary with args and returns what it printed.
func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "EASGATE_CONFIG=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

func TestCLISyncDevicesRuns(t *testing.T) {
	s := startSim(t, 80, 5)
	cfg := s.Info.ConfigFile

	if r := run(t, "config", "validate", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "valid") {
		t.Fatalf("config validate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	dry := run(t, "sync", "--config", cfg, "--dry-run", "--output", "json")
	if dry.code != 0 {
		t.Fatalf("dry run: exit %d: %s", dry.code, dry.stderr)
	}
	var plan struct {
		engine.RunSummary
		Plan *engine.Plan `json:"plan"`
	}
	if err := json.Unmarshal([]byte(dry.stdout), &plan); err != nil {
		t.Fatalf("dry run output: %v\n%s", err, dry.stdout)
	}
	if plan.Run.Status != engine.StatusDryRun || plan.Plan == nil || len(plan.Plan.Changes) == 0 {
		t.Fatalf("dry run: status %s, plan %v", plan.Run.Status, plan.Plan)
	}
	for _, c := range plan.Plan.Changes {
		if c.Reason == "" {
			t.Errorf("planned change without a reason: %+v", c)
		}
	}
	s.Org.Mu.RLock()
	for _, u := range s.Org.Users {
		for _, id := range append(append([]string{}, u.Allowed...), u.Blocked...) {
			if !strings.HasPrefix(id, "Appl") {
				t.Errorf("dry run changed Exchange: %s has %s", u.UPN, id)
			}
		}
	}
	s.Org.Mu.RUnlock()

	r := run(t, "sync", "--config", cfg, "--output", "json")
	if r.code != 0 {
		t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
	}
	var sum map[string]map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("sync output is not JSON: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"id", "kind", "trigger", "status", "started", "finished", "error"} {
		if _, ok := sum["run"][k]; !ok {
			t.Errorf("run summary lacks run.%s", k)
		}
	}
	for _, k := range []string{"eas_devices", "mdm_devices", "merged", "unmerged", "allowed", "blocked", "quarantined",
		"exempt", "changes_planned", "changes_applied", "changes_failed", "notifications_sent"} {
		if _, ok := sum["counts"][k]; !ok {
			t.Errorf("run summary lacks counts.%s", k)
		}
	}
	if sum["run"]["status"] != "succeeded" {
		t.Errorf("status = %v", sum["run"]["status"])
	}

	r = run(t, "devices", "--config", cfg, "--state", "blocked", "--output", "json")
	if r.code != 0 {
		t.Fatalf("devices: exit %d: %s", r.code, r.stderr)
	}
	var devs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &devs); err != nil || len(devs) == 0 {
		t.Fatalf("devices --state blocked: %v, %d devices\n%s", err, len(devs), r.stdout)
	}
	for _, d := range devs {
		for _, k := range []string{"mailbox", "device_id", "device_type", "device_model", "device_os", "user_agent", "access_state",
			"access_reason", "desired_access", "mdm_id", "link", "compliance", "first_sync", "last_sync", "notified_at", "notify_count"} {
			if _, ok := d[k]; !ok {
				t.Errorf("device JSON lacks %q", k)
			}
		}
		if d["access_state"] != "blocked" {
			t.Errorf("--state blocked listed a %v device", d["access_state"])
		}
	}
	if r := run(t, "devices", "--config", cfg, "--output", "csv"); r.code != 0 || !strings.HasPrefix(r.stdout, "mailbox,device_id,") {
		t.Errorf("devices csv: exit %d\n%.200s", r.code, r.stdout)
	}
	r = run(t, "runs", "--config", cfg, "--output", "json")
	var runs []engine.Run
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 2 {
		t.Errorf("runs: %v, %d runs (want the dry run and the sync)", err, len(runs))
	}
}

func TestCLIStoreInUse(t *testing.T) {
	s := startSim(t, 10, 1)
	st, err := store.Open(filepath.Join(s.Dir, "easgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := run(t, "sync", "--config", s.Info.ConfigFile)
	if r.code != exitInUse {
		t.Fatalf("sync while the store is held: exit %d, want %d\n%s", r.code, exitInUse, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "in use") || !strings.Contains(lines[0], "pid") {
		t.Errorf("stderr = %q, want one line saying the store is in use and by which pid", r.stderr)
	}
}

func TestCLIUsageAndConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(bad, []byte("store: x.db\nexchange:\n  servers: [ex01]\n  bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown key", []string{"config", "validate", "--config", bad}, exitUsage, "easgate.yaml:4"},
		{"missing config", []string{"sync", "--config", filepath.Join(dir, "nope.yaml")}, exitUsage, "no such file"},
		{"unknown flag", []string{"sync", "--fast"}, exitUsage, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"bad output", []string{"devices", "--output", "xml", "--config", bad}, exitUsage, "--output"},
		{"bad state", []string{"devices", "--state", "sideways", "--config", bad}, exitUsage, "--state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
			if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stack trace on bad input: %s", r.stderr)
			}
		})
	}
}

func TestCLISimPrintsItsAddressesFirst(t *testing.T) {
	cmd := exec.Command(binary, "sim", "--users", "20", "--dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	var first string
	select {
	case first = <-line:
	case <-time.After(20 * time.Second):
		t.Fatal("no first line within 20s")
	}
	var info map[string]string
	if err := json.Unmarshal([]byte(first), &info); err != nil {
		t.Fatalf("first line is not one JSON object: %v\n%s", err, first)
	}
	for _, k := range []string{"winrm_url", "winrm_user", "winrm_password", "graph_url", "authority_url", "tenant_id",
		"client_id", "client_secret", "smtp_addr", "ca_file", "config_file"} {
		if info[k] == "" {
			t.Errorf("first line lacks %s", k)
		}
	}
	if !strings.HasPrefix(info["winrm_url"], "http://127.0.0.1:") || !strings.HasSuffix(info["winrm_url"], "/wsman") {
		t.Errorf("winrm_url = %q", info["winrm_url"])
	}
	if r := run(t, "config", "validate", "--config", info["config_file"]); r.code != 0 {
		t.Errorf("the sim's config_file does not validate: %s", r.stderr)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sim after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("sim did not stop on SIGTERM")
	}
}
