package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim"
	"easgate/engine/sim/winrm"
)

// exchangeLists is every list entry of the simulated Exchange, as
// "upn|list|deviceID", sorted.
func exchangeLists(s *sim.Sim) []string {
	s.Org.Mu.RLock()
	defer s.Org.Mu.RUnlock()
	var out []string
	for _, u := range s.Org.Users {
		for _, id := range u.Allowed {
			out = append(out, strings.ToLower(u.UPN+"|allowed|"+id))
		}
		for _, id := range u.Blocked {
			out = append(out, strings.ToLower(u.UPN+"|blocked|"+id))
		}
	}
	slices.Sort(out)
	return out
}

// slowApply makes every PowerShell process after the first (the inventory)
// take a while, as applying on a busy Exchange server does, so that a test
// can stop easgate in the middle of it.
func slowApply(s *sim.Sim, delay time.Duration) {
	starts := 0
	s.WinRM.Handle("powershell.exe", winrm.ProgramFunc(func(ctx context.Context, p *winrm.Process) int {
		starts++
		if starts > 1 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
		}
		return s.Exchange.Run(ctx, p)
	}))
}

// smallBatches rewrites the simulator's config so that apply runs one small
// batch at a time.
func smallBatches(t *testing.T, s *sim.Sim) {
	t.Helper()
	b, err := os.ReadFile(s.Info.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "  parallel: 4\n  apply_batch: 500\n", "  parallel: 1\n  apply_batch: 25\n", 1)
	if err := os.WriteFile(s.Info.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKilledMidApplyConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a subprocess mid-apply; takes seconds")
	}
	// The reference: the same organisation synced without interruption.
	ref := startSim(t, 150, 11)
	if r := run(t, "sync", "--config", ref.Info.ConfigFile); r.code != 0 {
		t.Fatalf("reference sync: exit %d: %s", r.code, r.stderr)
	}
	want := exchangeLists(ref)

	s := startSim(t, 150, 11)
	smallBatches(t, s)
	slowApply(s, 150*time.Millisecond)
	before := len(exchangeLists(s))
	cmd := exec.Command(binary, "sync", "--config", s.Info.ConfigFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once some, but not all, changes have reached Exchange.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := len(exchangeLists(s))
		if n > before+10 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("apply never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	partial := exchangeLists(s)
	if len(partial) >= len(want) {
		t.Fatalf("the kill came too late: %d of %d entries already made", len(partial), len(want))
	}

	// The next run finds the interrupted one, records it, and converges.
	slowApply(s, 0)
	r := run(t, "sync", "--config", s.Info.ConfigFile, "--output", "json")
	if r.code != 0 {
		t.Fatalf("sync after the kill: exit %d: %s", r.code, r.stderr)
	}
	if got := exchangeLists(s); !slices.Equal(got, want) {
		t.Errorf("after recovery Exchange holds %d entries, an uninterrupted run %d", len(got), len(want))
		for _, e := range want {
			if !slices.Contains(got, e) {
				t.Errorf("missing %s", e)
				break
			}
		}
	}
	var runs []engine.Run
	if err := json.Unmarshal([]byte(run(t, "runs", "--config", s.Info.ConfigFile, "--output", "json").stdout), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("run history has %d runs, want the interrupted one and the recovery", len(runs))
	}
	killed := runs[1]
	if killed.Status != engine.StatusFailed || !strings.Contains(killed.Error, "interrupted") || killed.Kind != engine.RunFull {
		t.Errorf("interrupted run recorded as %s %s: %q", killed.Kind, killed.Status, killed.Error)
	}
	t.Logf("interrupted run: %s; in flight: %v", killed.Error, killed.Problems)
}
