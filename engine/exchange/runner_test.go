package exchange

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	simexchange "easgate/engine/sim/exchange"
	"easgate/engine/sim/org"
	"easgate/engine/sim/winrm"
)

// newSimClient runs a simulated Exchange server and returns a client for it.
func newSimClient(t *testing.T, cfg Config, prog func(winrm.Program) winrm.Program) *Client {
	t.Helper()
	o := org.Generate(org.Options{Users: 3, Seed: 1, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	srv := winrm.New(winrm.Config{Users: map[string]string{"svc": "pw"}})
	var p winrm.Program = simexchange.New(simexchange.Config{Org: o})
	if prog != nil {
		p = prog(p)
	}
	srv.Handle("powershell.exe", p)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	cfg.Servers = []string{hs.Listener.Addr().String()}
	cfg.Username, cfg.Password, cfg.AllowInsecureTransport = "svc", "pw", true
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sessionOnly(sp sessionPayload) any { return sp }

func TestTooLongCommandLineIsAReadableError(t *testing.T) {
	c := newSimClient(t, Config{}, nil)
	long := Script{Name: "long/1", Text: "# easgate-script: long/1\n" + strings.Repeat("#", MaxScriptLength+200)}
	res, err := c.run(context.Background(), long, sessionOnly, func(int, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	err = scriptError(long, res)
	if !errors.Is(err, ErrScript) || !strings.Contains(err.Error(), "exited 1: The command line is too long.") {
		t.Errorf("err = %v", err)
	}
}

func TestParallelBoundsPowerShellProcesses(t *testing.T) {
	var mu sync.Mutex
	running, most := 0, 0
	c := newSimClient(t, Config{Parallel: 2}, func(p winrm.Program) winrm.Program {
		return winrm.ProgramFunc(func(ctx context.Context, proc *winrm.Process) int {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			defer func() { mu.Lock(); running--; mu.Unlock() }()
			return p.Run(ctx, proc)
		})
	})
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ApplyChanges(context.Background(), nil); err != nil {
				t.Error(err)
			}
			if _, err := c.run(context.Background(), probeScript, sessionOnly, func(int, []byte) {}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if most != 2 {
		t.Errorf("at most %d processes ran at once, want 2", most)
	}
}

func TestOpName(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{name: "versioned", in: "inventory/1", want: "inventory"},
		{name: "bare", in: "hostname", want: "hostname"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := opName(tt.in); got != tt.want {
				t.Errorf("opName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{name: "refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, want: ErrUnreachable},
		{name: "no such host", err: &net.DNSError{Err: "no such host", Name: "ex09"}, want: ErrUnreachable},
		{name: "reset mid-read", err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, want: ErrConnection},
		{name: "handshake timeout", err: errors.New("net/http: TLS handshake timeout"), want: ErrTLS},
		{name: "cancelled", err: context.Canceled, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if !errors.Is(got, tt.want) || !errors.Is(got, ErrConnection) {
				t.Errorf("classify(%v) = %v, want it to wrap %v and ErrConnection", tt.err, got, tt.want)
			}
			if tt.want == ErrConnection && (errors.Is(got, ErrUnreachable) || errors.Is(got, ErrTLS)) {
				t.Errorf("classify(%v) = %v: a reset after connecting is neither unreachable nor TLS", tt.err, got)
			}
		})
	}
}
