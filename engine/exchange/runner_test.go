package exchange

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
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
	host, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	cfg.Servers, cfg.Username, cfg.Password, cfg.AllowInsecureTransport = []string{host}, "svc", "pw", true
	cfg.Port, _ = strconv.Atoi(port)
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTooLongCommandLineIsAReadableError(t *testing.T) {
	c := newSimClient(t, Config{}, nil)
	long := Script{Name: "long/1", Text: "# easgate-script: long/1\n" + strings.Repeat("#", MaxScriptLength+200)}
	res, err := c.run(context.Background(), long, struct{}{}, func(int, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	err = scriptError(long, c.server, res)
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
			if _, err := c.run(context.Background(), probeScript, c.session(), func(int, []byte) {}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if most != 2 {
		t.Errorf("at most %d processes ran at once, want 2", most)
	}
}
