//go:build linux

package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envHelper makes the test binary act as a client of the socket it names,
// under whatever uid it was started with.
const envHelper = "EASGATE_CONTROL_HELPER_SOCKET"

// TestMain makes the test binary a client of the socket envHelper names
// when it is set: TestAnotherUserIsRefused runs the binary so as another
// user, and this dials the socket, prints what happened and exits before
// any test runs.
func TestMain(m *testing.M) {
	if path := os.Getenv(envHelper); path != "" {
		helperClient(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helperClient(path string) {
	c, err := Dial(context.Background(), path)
	switch {
	case errors.Is(err, ErrForbidden):
		fmt.Println("forbidden:", err)
	case err != nil:
		fmt.Println("error:", err)
	default:
		fmt.Println("ok:", c.Info().User)
	}
}

// syncBuffer is a log sink the server writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAnotherUserIsRefused connects as uid 65534 (nobody), which needs
// root to arrange: through the file permissions alone (the kernel refuses
// the connect), through the peer-credential check alone (the socket made
// world-writable, so only the server's check stands), and as a member of
// control.group (allowed).
func TestAnotherUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user; TestAuthorize covers the decision")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "easgate-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	copyFile(t, os.Args[0], helper)

	tests := []struct {
		name      string
		group     string
		loosen    bool // chmod 0666 after Listen: the server's check alone decides
		want      string
		serverLog string // what the server logged, if the call reached it
	}{
		{"file permissions", "", false, "forbidden:", ""},
		{"peer credentials", "", true, "forbidden:", "uid=65534"},
		{"group member", fmt.Sprint(nobody), false, "ok: nobody", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			path := filepath.Join(dir, fmt.Sprintf("%d.sock", i))
			srv, err := Listen(Config{API: newFake(), Socket: path, Group: tt.group, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Close(ctx)
			}()
			if tt.loosen {
				if err := os.Chmod(path, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(helper, "-test.run=^$")
			cmd.Env = append(os.Environ(), envHelper+"="+path)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("helper printed %q, want %q", out, tt.want)
			}
			refused := strings.Contains(logs.String(), "refused a caller")
			switch {
			case tt.serverLog != "" && (!refused || !strings.Contains(logs.String(), tt.serverLog)):
				t.Errorf("server log lacks the refusal of %s:\n%s", tt.serverLog, logs.String())
			case tt.serverLog == "" && refused:
				t.Errorf("the server refused the call itself; want the kernel to (or no refusal):\n%s", logs.String())
			}
			t.Logf("helper: %s", strings.TrimSpace(string(out)))
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
