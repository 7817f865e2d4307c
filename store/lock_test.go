package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easgate/engine"
)

// A test binary started with holdEnv set opens the store at that path (read-
// only when holdModeEnv is "ro"), prints "ready" and holds it until its stdin
// closes. flock conflicts between processes are what production sees; within
// one process they may behave differently, so the holder is a real process.
const (
	holdEnv     = "EASGATE_STORE_TEST_HOLD"
	holdModeEnv = "EASGATE_STORE_TEST_HOLD_MODE"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(hold(path, os.Getenv(holdModeEnv) == "ro"))
	}
	if path := os.Getenv(writeEnv); path != "" {
		os.Exit(writeForever(path))
	}
	if dir := os.Getenv(stageEnv); dir != "" {
		os.Exit(stageForever(dir))
	}
	code := m.Run()
	if fixture.dir != "" {
		_ = os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

func hold(path string, readOnly bool) int {
	s, err := Open(path, Options{ReadOnly: readOnly})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// holder is a child process holding a store.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// startHolder starts a process that holds the store at path and waits until
// it does.
func startHolder(t *testing.T, path string, readOnly bool) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	cmd.Env = append(os.Environ(), holdEnv+"="+path, holdModeEnv+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, stdout)
		h.done <- cmd.Wait()
	}()
	t.Cleanup(func() { h.stop(t) })
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("holder did not start: %q %s", line, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("holder did not start in time")
	}
	return h
}

// stop closes the holder's stdin and waits for it to exit.
func (h *holder) stop(t *testing.T) {
	t.Helper()
	if h.stdin == nil {
		return
	}
	_ = h.stdin.Close()
	h.stdin = nil
	select {
	case err := <-h.done:
		if err != nil && !strings.Contains(err.Error(), "killed") {
			t.Errorf("holder exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
		t.Error("holder did not exit")
	}
}

// kill ends the holder without letting it clean up, as a crash would.
func (h *holder) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-h.done
	h.stdin = nil
}

// newStoreFile creates a store at a new path and closes it.
func newStoreFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "easgate.db")
	s, err := Open(path, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, &engine.Commit{Meta: &engine.Meta{MDMCount: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestSecondOpenerGetsStoreInUse(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name         string
		holderRO     bool
		openerRO     bool
		staleOwner   bool // an owner file naming a dead pid is left beside the store
		wantInUse    bool
		wantPID      bool   // the error names the holder's pid
		wantContains string // in the error text
	}{
		{name: "writer blocks writer", wantInUse: true, wantPID: true},
		{name: "writer blocks reader", openerRO: true, wantInUse: true, wantPID: true},
		{name: "reader blocks writer", holderRO: true, wantInUse: true, wantContains: "a read-only opener"},
		{name: "reader blocks writer despite a stale owner file", holderRO: true, staleOwner: true,
			wantInUse: true, wantContains: "which is not running"},
		{name: "readers share", holderRO: true, openerRO: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := newStoreFile(t)
			if tc.staleOwner {
				if _, err := writeOwner(path, owner{PID: deadPID(t), Host: hostname(t), Since: t0}); err != nil {
					t.Fatal(err)
				}
			}
			h := startHolder(t, path, tc.holderRO)
			start := time.Now()
			s, err := Open(path, Options{LockTimeout: timeout, ReadOnly: tc.openerRO, Logger: testLogger(t)})
			took := time.Since(start)
			if !tc.wantInUse {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				_ = s.Close()
				return
			}
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded while another process holds the store")
			}
			t.Logf("error after %v: %v", took, err)
			if !errors.Is(err, engine.ErrStoreInUse) {
				t.Errorf("err = %v, want ErrStoreInUse", err)
			}
			var iu *InUseError
			if !errors.As(err, &iu) {
				t.Fatalf("err is not an *InUseError")
			}
			if tc.wantPID {
				want := fmt.Sprintf("store %s in use by pid %d", path, h.cmd.Process.Pid)
				if iu.PID != h.cmd.Process.Pid || err.Error() != want {
					t.Errorf("err = %q, want %q", err, want)
				}
			} else if iu.PID != 0 {
				t.Errorf("PID = %d, want 0 (unknown)", iu.PID)
			}
			if !strings.Contains(err.Error(), tc.wantContains) {
				t.Errorf("err = %q, want it to contain %q", err, tc.wantContains)
			}
			if took < timeout-50*time.Millisecond || took > timeout+2*time.Second {
				t.Errorf("Open took %v with a lock timeout of %v", took, timeout)
			}
		})
	}
}

func TestOpenAfterHolderExits(t *testing.T) {
	tests := []struct {
		name      string
		crash     bool
		wantStale bool
	}{
		{name: "clean exit removes the owner file"},
		{name: "crash leaves a stale owner file that is replaced", crash: true, wantStale: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := newStoreFile(t)
			h := startHolder(t, path, false)
			if tc.crash {
				h.kill(t)
			} else {
				h.stop(t)
			}
			_, err := os.Stat(ownerPath(path))
			if stale := err == nil; stale != tc.wantStale {
				t.Errorf("owner file present = %v, want %v", stale, tc.wantStale)
			}
			var logs logBuffer
			s, err := Open(path, Options{LockTimeout: 300 * time.Millisecond, Logger: logs.logger()})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if got := logs.contains("replaced a stale owner file"); got != tc.wantStale {
				t.Errorf("stale owner logged = %v, want %v; logs:\n%s", got, tc.wantStale, logs.String())
			}
			o, err := readOwner(path)
			if err != nil || o.PID != os.Getpid() {
				t.Errorf("owner file = %+v, %v; want this process", o, err)
			}
			if st := mustLoad(t, s); st.Meta.MDMCount != 1 {
				t.Errorf("state lost: %+v", st.Meta)
			}
		})
	}
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestInUseErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  InUseError
		want string
	}{
		{name: "pid", err: InUseError{Path: "/var/lib/easgate.db", PID: 42}, want: "store /var/lib/easgate.db in use by pid 42"},
		{name: "other host", err: InUseError{Path: "s.db", PID: 42, Host: "node2"}, want: "store s.db in use by pid 42 on host node2"},
		{name: "unknown", err: InUseError{Path: "s.db"}, want: "store s.db in use by another process"},
		{name: "unknown with a note", err: InUseError{Path: "s.db", Note: "why"}, want: "store s.db in use by another process (why)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if !errors.Is(&tc.err, engine.ErrStoreInUse) {
				t.Error("does not wrap ErrStoreInUse")
			}
		})
	}
}
