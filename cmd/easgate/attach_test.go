package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"easgate/control"
	"easgate/engine"
	"easgate/tui"
)

// serveSim serves an in-process engine on the simulator's control socket,
// as easgate run would, with the given store path in its Info.
func serveSim(t *testing.T, a *app, storePath string) *control.Server {
	t.Helper()
	srv, err := control.Listen(control.Config{Socket: a.cfg.Resolve(a.cfg.Control.Socket), API: a.engine, Store: a.store, StorePath: storePath})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return srv
}

// TestConsoleThroughTheSocket drives the console on a control.Client: it
// shows the service's devices, and s runs a sync in the service under the
// OS user's name.
func TestConsoleThroughTheSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("a console flow")
	}
	s := startSim(t, 40, 9)
	a := openSim(t, s)
	abs, _ := filepath.Abs(a.store.Path())
	srv := serveSim(t, a, abs)
	c, err := control.Dial(context.Background(), srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	tm := teatest.NewTestModel(t, tui.New(c, tui.Options{}), teatest.WithInitialTermSize(120, 32))
	t.Cleanup(func() { _ = tm.Quit() })
	wait := func(what string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(what)) },
			teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	}
	wait("easgate")
	tm.Send(tea.KeyPressMsg{Code: 's', Text: "s"})
	// The sync event reaches the console through the socket's event stream.
	wait("notifications sent")
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))

	runs, err := a.engine.Runs(context.Background(), 5)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %d, %v; want the console's", len(runs), err)
	}
	if r := runs[0]; r.Trigger != engine.TriggerManual || r.Actor != actor() || r.Status != engine.StatusSucceeded {
		t.Errorf("console's run: %s by %q, %s; want manual by %q, succeeded", r.Trigger, r.Actor, r.Status, actor())
	}
}

// TestAttachChecksTheStore refuses a socket that serves another store and
// says so beside the store's own "in use".
func TestAttachChecksTheStore(t *testing.T) {
	s := startSim(t, 20, 2)
	a := openSim(t, s)
	cfg := s.Info.ConfigFile
	serveSim(t, a, "/srv/other/easgate.db")
	r := run(t, "runs", "--config", cfg)
	if r.code != exitInUse || !strings.Contains(r.stderr, "belongs to the service of store /srv/other/easgate.db") {
		t.Errorf("runs against another store's socket: exit %d: %s", r.code, r.stderr)
	}
}

func TestStaleSocketFallsBackToTheStore(t *testing.T) {
	s := startSim(t, 20, 2)
	cfg := s.Info.ConfigFile
	sock := filepath.Join(s.Dir, "easgate.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if r := run(t, "sync", "--config", cfg, "--output", "json"); r.code != 0 {
		t.Fatalf("sync beside a stale socket: exit %d: %s", r.code, r.stderr)
	}
	if runs := runsJSON(t, cfg); len(runs) != 1 {
		t.Errorf("%d runs, want the sync's", len(runs))
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the CLI touched the stale socket: %v", err)
	}
}

func TestSDNotify(t *testing.T) {
	dir := t.TempDir()
	addr := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tests := []struct {
		name, env, state string
		want             string
	}{
		{"not under systemd", "", "READY=1", ""},
		{"ready", addr, "READY=1", "READY=1"},
		{"stopping", addr, "STOPPING=1", "STOPPING=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tt.env)
			if err := sdNotify(tt.state); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				return
			}
			buf := make([]byte, 64)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil || string(buf[:n]) != tt.want {
				t.Errorf("systemd got %q, %v; want %q", buf[:n], err, tt.want)
			}
		})
	}
}

func TestBuildInfoPrefersLinkerFlags(t *testing.T) {
	old := [3]string{version, commit, date}
	t.Cleanup(func() { version, commit, date = old[0], old[1], old[2] })
	tests := []struct {
		name                string
		version, commit, dt string
		want                versionInfo
	}{
		{"linker flags", "1.4.0", "0123456789abcdef", "2026-03-01T12:00:00Z", versionInfo{Version: "1.4.0", Commit: "0123456789abcdef", Date: "2026-03-01T12:00:00Z"}},
		{"none", "", "", "", versionInfo{Version: "devel", Commit: "unknown", Date: "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			version, commit, date = tt.version, tt.commit, tt.dt
			got := buildInfo()
			if got.Version != tt.want.Version || got.Commit != tt.want.Commit || got.Date != tt.want.Date || got.Go == "" {
				t.Errorf("buildInfo = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestAttachWithoutReadingTheSecrets: an admin in control.group cannot read
// the service's secret files, so the config does not validate for them; the
// commands still attach to the service, and fail as before without one.
func TestAttachWithoutReadingTheSecrets(t *testing.T) {
	s := startSim(t, 20, 3)
	a := openSim(t, s)
	cfg := s.Info.ConfigFile
	abs, _ := filepath.Abs(a.store.Path())
	srv := serveSim(t, a, abs)
	secret := filepath.Join(s.Dir, "exchange-password")
	if err := os.Rename(secret, secret+".away"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		want    string
		service bool
	}{
		{"runs", []string{"runs", "--output", "json"}, 0, "[]", true},
		{"check", []string{"check"}, nagiosCrit, "EASGATE CRITICAL - no successful sync recorded", true},
		{"store check", []string{"store", "check"}, 0, "is consistent", true},
		{"runs without a service", []string{"runs"}, exitUsage, "exchange.password_file", false},
		{"check without a service", []string{"check"}, nagiosUnknwn, "EASGATE UNKNOWN - ", false},
	}
	for _, tt := range tests {
		if !tt.service && srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = srv.Close(ctx)
			cancel()
			srv = nil
		}
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, append(tt.args, "--config", cfg)...)
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.want) {
				t.Errorf("exit %d, want %d and %q:\n%s%s", r.code, tt.code, tt.want, r.stdout, r.stderr)
			}
		})
	}
}
