package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestProfileFlags writes both profiles of a command, in pprof's
// gzip-compressed format, and refuses a CPU profile it cannot create.
func TestProfileFlags(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	if r := run(t, "version", "--cpuprofile", cpu, "--memprofile", mem); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: %d bytes, not a gzip-compressed profile", filepath.Base(p), len(b))
		}
	}
	r := run(t, "version", "--cpuprofile", filepath.Join(dir, "absent", "cpu.prof"))
	if r.code != exitUsage || !bytes.Contains([]byte(r.stderr), []byte("--cpuprofile")) {
		t.Fatalf("exit %d, stderr %q: want 2 naming --cpuprofile", r.code, r.stderr)
	}
}
