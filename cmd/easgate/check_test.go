package main

import (
	"strings"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim/winrm"
)

// TestCheckExitCodes drives the simulators into each state and reads
// easgate check's verdict: through the store when no service runs, through
// the socket when one does.
func TestCheckExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("several syncs and a service against the simulators")
	}
	s := startSim(t, 60, 7)
	cfg := s.Info.ConfigFile
	top := t // the service outlives the step that starts it
	limits := "max_new_blocks: 50\n  max_new_blocks_percent: 40"
	tight := "max_new_blocks: 2\n  max_new_blocks_percent: 1"
	var svc *service
	steps := []struct {
		name    string
		prepare func(t *testing.T)
		args    []string
		code    int
		want    []string
	}{
		{"no config", nil, []string{"--config", s.Dir + "/nope.yaml"}, nagiosUnknwn, []string{"EASGATE UNKNOWN - ", "no such file"}},
		{"bad flag", nil, []string{"--max-age", "soon"}, nagiosUnknwn, []string{"EASGATE UNKNOWN - ", "--max-age"}},
		{"no store yet", nil, nil, nagiosUnknwn, []string{"EASGATE UNKNOWN - ", "store"}},
		{"brake holds a plan", func(t *testing.T) {
			editConfig(t, s, limits, tight)
			if r := run(t, "sync", "--config", cfg); r.code != exitBraked {
				t.Fatalf("sync with tight limits: exit %d: %s", r.code, r.stderr)
			}
		}, nil, nagiosCrit, []string{"EASGATE CRITICAL - ", "safety brake holds a plan", "no successful sync recorded", "| eas_devices="}},
		{"notifications fail", func(t *testing.T) {
			editConfig(t, s, tight, limits)
			if err := s.SMTP.SetDown(true); err != nil {
				t.Fatal(err)
			}
			if r := run(t, "sync", "--config", cfg); r.code != 0 {
				t.Fatalf("sync with SMTP down: exit %d: %s", r.code, r.stderr)
			}
		}, nil, nagiosWarn, []string{"EASGATE WARNING - ", "notification(s) failed"}},
		{"healthy", func(t *testing.T) {
			if err := s.SMTP.SetDown(false); err != nil {
				t.Fatal(err)
			}
			if r := run(t, "sync", "--config", cfg); r.code != 0 {
				t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
			}
		}, nil, nagiosOK, []string{"EASGATE OK - last sync succeeded", "unmerged=", "last_run_age=", ";;1800;0", "changes_failed=0"}},
		{"too long without a success", nil, []string{"--max-age", "1ms"}, nagiosCrit, []string{"EASGATE CRITICAL - last successful sync", "limit 1ms"}},
		{"warning age", nil, []string{"--warn-age", "1ms", "--max-age", "1h"}, nagiosWarn, []string{"EASGATE WARNING - last successful sync", ";0;3600;0"}},
		{"too many unmerged", nil, []string{"--warn-unmerged", "1", "--crit-unmerged", "100000"}, nagiosWarn, []string{"unmerged devices (warning at 1)", ";1;100000;0"}},
		{"service: healthy through the socket", func(t *testing.T) {
			svc = startService(top, cfg)
			waitFor(t, "the service's start-up sync", 30*time.Second, func() bool {
				runs := runsJSON(t, cfg)
				return len(runs) > 0 && runs[0].Trigger == engine.TriggerStartup && runs[0].Status != engine.StatusRunning
			})
		}, nil, nagiosOK, []string{"EASGATE OK - "}},
		{"service: Exchange unreachable", func(t *testing.T) {
			s.WinRM.SetFault(winrm.OpAny, winrm.Fault{Reset: true})
			if r := run(t, "sync", "--config", cfg); r.code != exitFailed {
				t.Fatalf("sync with WinRM resetting: exit %d: %s", r.code, r.stderr)
			}
		}, nil, nagiosCrit, []string{"EASGATE CRITICAL - ", "last sync failed", "Exchange unreachable"}},
		{"stopped: the failed run from the store", func(t *testing.T) {
			if code := svc.stop(t); code != 0 {
				t.Fatalf("easgate run exited %d", code)
			}
		}, nil, nagiosCrit, []string{"EASGATE CRITICAL - last sync failed"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.prepare != nil {
				st.prepare(t)
			}
			args := append([]string{"check"}, st.args...)
			if !strings.Contains(strings.Join(st.args, " "), "--config") {
				args = append(args, "--config", cfg)
			}
			r := run(t, args...)
			if r.code != st.code {
				t.Errorf("exit %d, want %d: %s%s", r.code, st.code, r.stdout, r.stderr)
			}
			if lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n"); len(lines) != 1 {
				t.Errorf("%d lines on stdout, want one: %q", len(lines), r.stdout)
			}
			for _, w := range st.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout %q lacks %q", r.stdout, w)
				}
			}
			t.Logf("%s", strings.TrimSpace(r.stdout))
		})
	}
}

func TestJudge(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ok := engine.Run{ID: "ok", Kind: engine.RunQuick, Status: engine.StatusSucceeded, Finished: now.Add(-5 * time.Minute)}
	failed := engine.Run{ID: "f", Kind: engine.RunQuick, Status: engine.StatusFailed, Error: "read Exchange: connection refused", Finished: now.Add(-time.Minute)}
	dry := engine.Run{ID: "d", Status: engine.StatusDryRun, Finished: now}
	withProblem := ok
	withProblem.Problems = []string{"Exchange: Get-CASMailbox failed for 2 mailboxes"}
	benign := ok
	benign.Problems = []string{"no complete full sync yet: ran a full sync instead of a quick one"}
	up := engine.Health{Name: "ex01", OK: true, LastCall: now}
	down := engine.Health{Name: "ex02", OK: false, LastCall: now, Error: "connection refused"}
	f := checkFlags{maxAge: 30 * time.Minute, warnUnmerged: -1, critUnmerged: -1}
	tests := []struct {
		name string
		in   checkInput
		code int
		want string
	}{
		{"ok", checkInput{runs: []engine.Run{ok}}, nagiosOK, "EASGATE OK - last sync succeeded 5m0s ago"},
		{"a dry run is not the last sync", checkInput{runs: []engine.Run{dry, ok}}, nagiosOK, "OK"},
		{"benign problem", checkInput{runs: []engine.Run{benign}}, nagiosOK, "OK"},
		{"problem", checkInput{runs: []engine.Run{withProblem}}, nagiosWarn, "last sync had 1 problem(s): Exchange: Get-CASMailbox"},
		{"failed", checkInput{runs: []engine.Run{failed, ok}}, nagiosCrit, "last sync failed: read Exchange: connection refused"},
		{"never succeeded", checkInput{runs: []engine.Run{failed}}, nagiosCrit, "no successful sync recorded"},
		{"failover", checkInput{runs: []engine.Run{ok}, status: engine.Status{Exchange: []engine.Health{up, down}}}, nagiosWarn,
			"Exchange failover active: ex02 (connection refused) down, using ex01"},
		{"all servers down", checkInput{runs: []engine.Run{ok}, status: engine.Status{Exchange: []engine.Health{down}}}, nagiosCrit,
			"Exchange unreachable: ex02 (connection refused)"},
		{"cooling down", checkInput{runs: []engine.Run{ok}, status: engine.Status{Exchange: []engine.Health{up, {Name: "ex03", OK: true, CoolDownUntil: now.Add(time.Minute)}}}},
			nagiosWarn, "failover active: ex03 down"},
		{"never called", checkInput{runs: []engine.Run{ok}, status: engine.Status{Exchange: []engine.Health{{Name: "ex09"}}, Intune: engine.Health{Name: "Microsoft Graph"}}},
			nagiosOK, "OK"},
		{"graph down", checkInput{runs: []engine.Run{ok}, status: engine.Status{Intune: engine.Health{Name: "Microsoft Graph", LastCall: now, Error: "401 | invalid_client"}}},
			nagiosCrit, "Graph unreachable (401 / invalid_client)"},
		{"engine warning", checkInput{runs: []engine.Run{ok}, status: engine.Status{Warnings: []string{"unmanaged_access is quarantine but Exchange's DefaultAccessLevel is Allow"}}},
			nagiosWarn, "DefaultAccessLevel is Allow"},
		{"brake", checkInput{runs: []engine.Run{ok}, status: engine.Status{HeldPlan: &engine.PlanSummary{Brake: &engine.Brake{Reason: "60 new blocks exceed 50"}},
			Warnings: []string{"safety brake holds a plan: 60 new blocks exceed 50"}}}, nagiosCrit, "CRITICAL - safety brake holds a plan: 60 new blocks exceed 50; 0 EAS"},
		{"control characters", checkInput{runs: []engine.Run{{Status: engine.StatusFailed, Error: "bad\nline\x1b[31m"}}}, nagiosCrit, "last sync failed: bad line;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.now = now
			code, line := judge(tt.in, f)
			if code != tt.code || !strings.Contains(line, tt.want) {
				t.Errorf("judge = %d %q, want %d and %q", code, line, tt.code, tt.want)
			}
			if strings.Count(line, "|") != 1 || strings.ContainsAny(line, "\n\r\x1b") {
				t.Errorf("line %q: want exactly one | and no control characters", line)
			}
		})
	}
}
