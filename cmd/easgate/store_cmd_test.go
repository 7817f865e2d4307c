package main

import (
	be "encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"easgate/store"
)

func TestStoreMaintenanceWithoutAService(t *testing.T) {
	s := startSim(t, 30, 4)
	cfg := s.Info.ConfigFile
	db := filepath.Join(s.Dir, "easgate.db")
	if r := run(t, "sync", "--config", cfg); r.code != 0 {
		t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
	}
	backup := filepath.Join(t.TempDir(), "copy.db")
	steps := []struct {
		name    string
		prepare func(t *testing.T)
		args    []string
		code    int
		stdout  string
		stderr  string
		after   func(t *testing.T)
	}{
		{"backup to a file", nil, []string{"store", "backup", backup}, 0, "from the store", "", func(t *testing.T) {
			fi, err := os.Stat(backup)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("backup file: %v, want mode 0600", err)
			}
			st, err := store.Open(backup, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if runs, _ := st.Runs(t.Context(), 5); len(runs) != 1 {
				t.Errorf("backup holds %d runs, want 1", len(runs))
			}
		}},
		{"backup to stdout", nil, []string{"store", "backup", "-"}, 0, "", "", nil},
		{"check a healthy store", nil, []string{"store", "check"}, 0, "is consistent", "", nil},
		{"check as JSON", nil, []string{"store", "check", "--output", "json"}, 0, `"healthy": true`, "", nil},
		{"compact", nil, []string{"store", "compact"}, 0, "the old file is " + db + ".bak", "", func(t *testing.T) {
			if _, err := os.Stat(db + ".bak"); err != nil {
				t.Errorf("no .bak: %v", err)
			}
			if _, err := os.Stat(db + ".compact"); !os.IsNotExist(err) {
				t.Errorf("the compaction's temporary file is left: %v", err)
			}
			if runs := runsJSON(t, cfg); len(runs) != 1 {
				t.Errorf("after compaction the store holds %d runs, want 1", len(runs))
			}
		}},
		{"check a truncated store", func(t *testing.T) {
			if err := os.Truncate(db, 16<<10); err != nil {
				t.Fatal(err)
			}
		}, []string{"store", "check"}, exitFailed, "", "problem(s)", nil},
		{"a store from a newer easgate", func(t *testing.T) {
			if err := os.Remove(db); err != nil {
				t.Fatal(err)
			}
			st, err := store.Open(db, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_ = st.Close()
			bdb, err := bolt.Open(db, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("schema"), be.BigEndian.AppendUint64(nil, 99))
			}); err != nil {
				t.Fatal(err)
			}
			_ = bdb.Close()
		}, []string{"runs"}, exitUsage, "", "newer easgate", nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.prepare != nil {
				st.prepare(t)
			}
			r := run(t, append(st.args, "--config", cfg)...)
			if r.code != st.code || !strings.Contains(r.stdout, st.stdout) || !strings.Contains(r.stderr, st.stderr) {
				t.Fatalf("exit %d, want %d\nstdout %.300q (want %q)\nstderr %q (want %q)", r.code, st.code, r.stdout, st.stdout, r.stderr, st.stderr)
			}
			if st.after != nil {
				st.after(t)
			}
		})
	}
}

func TestVersionAndCompletion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"version", []string{"version"}, "easgate devel (commit unknown, built unknown, go"},
		{"version json", []string{"version", "--output", "json"}, `"version": "devel"`},
		{"bash", []string{"completion", "bash"}, "bash completion"},
		{"zsh", []string{"completion", "zsh"}, "#compdef easgate"},
		{"fish", []string{"completion", "fish"}, "complete -c easgate"},
		{"powershell", []string{"completion", "powershell"}, "Register-ArgumentCompleter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
				t.Errorf("exit %d, stdout %.200q; want %q", r.code, r.stdout, tt.want)
			}
		})
	}
}
