//go:build linux

package store

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// mappedRSS returns how many kilobytes of path's memory maps are resident
// in this process, from /proc/self/smaps.
func mappedRSS(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	kb, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		// A mapping's header line: range, perms, offset, device, inode and,
		// for a file, its path; anonymous mappings have no path.
		if fields := strings.Fields(line); len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			kb += n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return kb
}

// TestReleaseMappedPages checks that opening and loading a store does not
// leave the file's pages counted in the process's resident set, and that
// the store still reads correctly afterwards (the pages fault back in).
func TestReleaseMappedPages(t *testing.T) {
	s := openTemp(t, Options{})
	c := newGen(5).snapshot(20000, 20000, 100)
	mustCommit(t, s, c)
	s = reopen(t, s, Options{})
	fileKB := int(s.fileSize() / 1024)
	if fileKB < 8*1024 {
		t.Fatalf("store is %d kB: too small to tell released pages from touched ones", fileKB)
	}
	if kb := mappedRSS(t, s.Path()); kb > fileKB/8 {
		t.Errorf("after open, %d kB of the %d kB file are resident", kb, fileKB)
	}
	st := mustLoad(t, s)
	if kb := mappedRSS(t, s.Path()); kb > fileKB/8 {
		t.Errorf("after Load, %d kB of the %d kB file are resident", kb, fileKB)
	}
	if len(st.Records) != 20000 {
		t.Fatalf("loaded %d records, want 20000", len(st.Records))
	}
	// A second load reads the released pages again.
	again := mustLoad(t, s)
	for _, r := range c.PutRecords.Items {
		if got := again.Records[r.Key()]; got != r {
			t.Fatalf("record %s reloaded as %+v", r.Key(), got)
		}
	}
}
