package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"easgate/engine"
)

// A test binary started with writeEnv set commits to the store at that path
// in a loop, printing each serial it committed, until it is killed.
const writeEnv = "EASGATE_STORE_TEST_WRITE"

func writeForever(path string) int {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	st, err := s.Load(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serial := st.Serial
	for i := 0; ; i++ {
		c := &engine.Commit{Expect: serial}
		for j := range 200 {
			r := engine.DeviceRecord{EASDevice: engine.EASDevice{Mailbox: fmt.Sprintf("u%d@contoso.com", j),
				DeviceID: fmt.Sprintf("dev%d", j), DeviceModel: strings.Repeat("m", 100+i%50), FirstSync: time.Unix(int64(i), 0).UTC()}}
			c.PutRecords.Items = append(c.PutRecords.Items, r)
		}
		c.Journal = []engine.JournalEntry{{Time: time.Now().UTC(), Kind: engine.JournalRun, Message: "commit " + strconv.Itoa(i)}}
		if serial, err = s.Commit(ctx, c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(serial)
	}
}

// startWriter starts this test binary as a writer process, told what to do
// by the environment variable env set to value, and returns it with a
// scanner over the lines it prints, for the test to kill it at a point.
func startWriter(t *testing.T, env, value string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+value)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// TestKillDuringWritesLeavesAReadableStore kills a process in the middle of
// a stream of commits, repeatedly, and checks that the store opens, passes
// its consistency check and holds at least every commit the writer reported
// as done: bbolt's copy-on-write pages and fsync before the meta page flip.
func TestKillDuringWritesLeavesAReadableStore(t *testing.T) {
	if testing.Short() {
		t.Skip("kills writer processes; takes seconds")
	}
	path := filepath.Join(t.TempDir(), "easgate.db")
	for round := range 5 {
		cmd, sc := startWriter(t, writeEnv, path)
		var committed uint64
		deadline := time.Now().Add(time.Duration(100+round*37) * time.Millisecond)
		for sc.Scan() {
			n, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("writer said %q", sc.Text())
			}
			committed = n
			if time.Now().After(deadline) {
				break
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if committed == 0 {
			t.Fatalf("round %d: the writer committed nothing before it was killed", round)
		}

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		if errs := s.Check(); len(errs) > 0 {
			t.Fatalf("round %d: check after kill: %v", round, errs)
		}
		st, err := s.Load(context.Background())
		if err != nil {
			t.Fatalf("round %d: load after kill: %v", round, err)
		}
		if st.Serial < committed || len(st.Records) != 200 {
			t.Errorf("round %d: serial %d with %d records; the writer had committed serial %d", round, st.Serial, len(st.Records), committed)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
