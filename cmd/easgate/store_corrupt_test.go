package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// damage is something a disk, a filesystem or a careless admin does to the
// store file.
type damage struct {
	name string
	do   func(t *testing.T, path string)
}

func storeDamages() []damage {
	overwrite := func(off int64, b []byte) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	noise := make([]byte, 16<<10)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	return []damage{
		{name: "truncated to 16 KiB", do: func(t *testing.T, path string) {
			if err := os.Truncate(path, 16<<10); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "truncated to its meta pages", do: func(t *testing.T, path string) {
			if err := os.Truncate(path, 8192); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "meta pages zeroed", do: overwrite(0, make([]byte, 8192))},
		{name: "pages of noise", do: overwrite(8192, noise)},
		{name: "not a store at all", do: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("store: ./easgate.db\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

// TestCorruptStoreThroughTheCLI damages the store file in each way a disk
// can and runs the commands an admin would: each fails with exit code 1 and
// one line that names the file, says it is corrupt and what to do (restore
// the backup, or move it aside and let a full sync rebuild it), with no
// stack trace and without touching the file. Then both remedies work: the
// backup brings history and ownership back; a store moved aside is rebuilt
// by a full sync.
func TestCorruptStoreThroughTheCLI(t *testing.T) {
	s := startSim(t, 20, 43)
	cfg := s.Info.ConfigFile
	db := filepath.Join(s.Dir, "easgate.db")
	for range 2 {
		if r := run(t, "sync", "--config", cfg); r.code != 0 {
			t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
		}
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if r := run(t, "store", "backup", backup, "--config", cfg); r.code != 0 {
		t.Fatalf("store backup: exit %d: %s", r.code, r.stderr)
	}
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	wantRuns := runsJSON(t, cfg)
	before := exchangeLists(s)

	for _, d := range storeDamages() {
		t.Run(d.name, func(t *testing.T) {
			if err := os.WriteFile(db, good, 0o600); err != nil {
				t.Fatal(err)
			}
			d.do(t, db)
			damaged, err := os.ReadFile(db)
			if err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"runs"}, {"devices"}, {"sync"}, {"sync", "--dry-run"}, {"store", "check"}} {
				r := run(t, append(args, "--config", cfg)...)
				if r.code != exitFailed {
					t.Errorf("%v: exit %d, want %d\nstdout %s\nstderr %s", args, r.code, exitFailed, r.stdout, r.stderr)
				}
				msg := r.stderr
				if args[0] == "store" {
					msg = r.stdout + r.stderr // check reports its findings on stdout
				}
				for _, w := range []string{db, "corrupt", "restore it from a backup", "full sync rebuild it"} {
					if !strings.Contains(msg, w) {
						t.Errorf("%v: the message does not say %q:\n%s", args, w, msg)
					}
				}
				if args[0] != "store" && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
					t.Errorf("%v: want one line on stderr, got:\n%s", args, r.stderr)
				}
				if strings.Contains(msg, "goroutine ") || strings.Contains(msg, ".go:") {
					t.Errorf("%v: stack trace:\n%s", args, msg)
				}
			}
			now, err := os.ReadFile(db)
			if err != nil || string(now) != string(damaged) {
				t.Errorf("the commands changed the damaged store (%v)", err)
			}
			if got := exchangeLists(s); !slices.Equal(got, before) {
				t.Error("a command on a corrupt store changed Exchange")
			}
		})
	}

	// Remedy one: restore the backup. History and ownership are back, and
	// a sync finds nothing to change.
	if err := os.Rename(db, db+".corrupt"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := runsJSON(t, cfg); len(got) != len(wantRuns) || got[0].ID != wantRuns[0].ID {
		t.Errorf("the restored store holds %d runs, the backup was taken with %d", len(got), len(wantRuns))
	}
	r := run(t, "sync", "--config", cfg, "--output", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"changes_planned": 0`) {
		t.Errorf("sync on the restored store: exit %d, want nothing to change\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Remedy two: no backup; move the store aside. A full sync rebuilds the
	// snapshot from Exchange and Intune; the entries easgate made before
	// are an admin's now (their ownership was in the lost store), so
	// nothing is removed and nothing is blocked twice.
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	r = run(t, "sync", "--config", cfg, "--output", "json")
	if r.code != 0 {
		t.Fatalf("full sync on a new store: exit %d: %s", r.code, r.stderr)
	}
	if got := exchangeLists(s); !slices.Equal(got, before) {
		t.Errorf("rebuilding changed Exchange: %d entries before, %d after", len(before), len(got))
	}
	if got := runsJSON(t, cfg); len(got) != 1 {
		t.Errorf("the rebuilt store holds %d runs, want the rebuilding one", len(got))
	}
}
