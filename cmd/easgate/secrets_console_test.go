package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"easgate/config"
	"easgate/engine"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/winrm"
	"easgate/tui"
)

// frameRecorder wraps the console's model and keeps, as plain text, every
// frame the program renders (and the window titles it sets): what a
// terminal would show, whatever the renderer skips as unchanged.
type frameRecorder struct {
	inner tea.Model
	rec   *frames
}

type frames struct {
	mu   sync.Mutex
	text []string
}

func (f *frames) add(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.text); n == 0 || f.text[n-1] != s {
		f.text = append(f.text, s)
	}
}

// all returns every frame so far, joined.
func (f *frames) all() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.text, "\n\f\n")
}

// last returns the latest frame.
func (f *frames) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.text) == 0 {
		return ""
	}
	return f.text[len(f.text)-1]
}

func (r frameRecorder) Init() tea.Cmd { return r.inner.Init() }

func (r frameRecorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := r.inner.Update(msg)
	r.inner = m
	return r, cmd
}

func (r frameRecorder) View() tea.View {
	v := r.inner.View()
	r.rec.add(v.WindowTitle + "\n" + ansi.Strip(v.Content))
	return v
}

// consoleDriver drives the console on a fake terminal.
type consoleDriver struct {
	t   *testing.T
	tm  *teatest.TestModel
	rec *frames
}

func (c *consoleDriver) press(keys ...string) {
	for _, k := range keys {
		switch k {
		case "enter":
			c.tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
		case "esc":
			c.tm.Send(tea.KeyPressMsg{Code: tea.KeyEscape})
		case "tab":
			c.tm.Send(tea.KeyPressMsg{Code: tea.KeyTab})
		case "down":
			c.tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
		default:
			r := []rune(k)[0]
			c.tm.Send(tea.KeyPressMsg{Code: r, Text: k})
		}
	}
}

// waitFor waits until the latest frame shows every one of texts.
func (c *consoleDriver) waitFor(what string, texts ...string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		f := c.rec.last()
		ok := true
		for _, s := range texts {
			ok = ok && strings.Contains(f, s)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: the console never showed %q; last frame:\n%s", what, texts, f)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSecretsStayOutOfTheConsole renders the console against an engine with
// real data (a sync through the real clients, logs at debug level into the
// log view, connection errors) and searches every frame it rendered for the
// credentials.
func TestSecretsStayOutOfTheConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the console through every view")
	}
	s := startSim(t, 40, 29)
	secrets := secretsOf(s)
	cfg, _, err := config.Load(s.Info.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	ring := engine.NewLogRing(1000, slog.LevelDebug)
	a, err := openWith(context.Background(), cfg, logOptions{file: cfg.Resolve(cfg.Log.File), level: "debug", ring: ring}, openSync)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)

	rec := &frames{}
	tm := teatest.NewTestModel(t, frameRecorder{inner: tui.New(a.engine, tui.Options{Title: "easgate"}), rec: rec},
		teatest.WithInitialTermSize(120, 40))
	c := &consoleDriver{t: t, tm: tm, rec: rec}
	c.waitFor("start", "Overview")

	c.press("s")
	c.waitFor("a full sync", "succeeded")
	for i, title := range []string{"Overview", "Unmerged", "Blocked", "Devices", "Runs", "Plan", "Journal", "Log"} {
		c.press(strconv.Itoa(i + 1))
		c.waitFor("view "+title, title)
		switch title {
		case "Unmerged", "Runs", "Journal":
			c.press("enter")
			time.Sleep(200 * time.Millisecond)
			c.press("p")
			time.Sleep(200 * time.Millisecond)
			c.press("esc", "esc")
		case "Log":
			c.waitFor("the log view", "sync finished")
		}
	}
	c.press("?")
	time.Sleep(200 * time.Millisecond)
	c.press("esc")

	// Errors on screen: Exchange refusing the credentials, Graph's token
	// endpoint failing.
	s.WinRM.SetFault(winrm.OpAny, winrm.Fault{Unauthorized: true})
	c.press("1", "s")
	c.waitFor("a failed sync", "failed")
	s.WinRM.ClearFaults()
	s.Graph.ExpireTokens()
	s.Graph.AddFault(graph.Fault{Path: s.Graph.TokenPath(), Status: 401})
	c.press("s")
	time.Sleep(500 * time.Millisecond)
	c.waitFor("a second failed sync", "failed")
	s.Graph.ClearFaults()
	c.press("8")
	c.waitFor("the log view after the failures", "Log")
	c.press("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))

	all := rec.all()
	if n := strings.Count(all, "\n\f\n") + 1; n < 20 {
		t.Fatalf("only %d frames rendered: nothing much was searched", n)
	}
	for _, want := range []string{"succeeded", "failed", "sync finished"} {
		if !strings.Contains(all, want) {
			t.Errorf("no frame shows %q: the scan missed what it should cover", want)
		}
	}
	assertNoSecret(t, "the console's frames", []byte(all), secrets)
	t.Logf("searched %d frames (%d KB)", strings.Count(all, "\n\f\n")+1, len(all)/1024)
}

// procFile reads /proc/PID/name.
func procFile(t *testing.T, pid int, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		t.Fatalf("read %s of pid %d: %v", name, pid, err)
	}
	if len(b) == 0 {
		t.Fatalf("%s of pid %d is empty: nothing was searched", name, pid)
	}
	return b
}

// TestSecretsStayOutOfProcessCommandLines runs `easgate sim` and `easgate
// run` as processes, with a sync through the service, and searches their
// command lines and environments for the credentials (the test sets no
// EASGATE_* secret variable, so none may appear there).
func TestSecretsStayOutOfProcessCommandLines(t *testing.T) {
	if testing.Short() {
		t.Skip("runs easgate sim and easgate run as processes")
	}
	simCmd, info := startSimProcess(t, t.TempDir(), 30)
	secrets := map[string]string{
		"WinRM password": info.WinRMPassword,
		"Graph secret":   info.ClientSecret,
		"SMTP password":  info.SMTPPassword,
	}
	for _, v := range []string{config.EnvExchangePassword, config.EnvGraphSecret, config.EnvSMTPPassword} {
		if os.Getenv(v) != "" {
			t.Fatalf("%s is set in the test's environment", v)
		}
	}
	svc := startService(t, info.ConfigFile)
	if r := run(t, "sync", "--config", info.ConfigFile, "--output", "json"); r.code != 0 {
		t.Fatalf("sync through the service: exit %d: %s", r.code, r.stderr)
	} else {
		assertNoSecret(t, "sync's output", []byte(r.stdout+r.stderr), secrets)
	}
	for name, pid := range map[string]int{"easgate sim": simCmd.Process.Pid, "easgate run": svc.cmd.Process.Pid} {
		if cl := procFile(t, pid, "cmdline"); !bytes.Contains(cl, []byte("--config")) && !bytes.Contains(cl, []byte("--dir")) {
			t.Fatalf("pid %d is not %s: %q", pid, name, cl)
		}
		for _, f := range []string{"cmdline", "environ"} {
			assertNoSecret(t, name+"'s /proc/"+f, procFile(t, pid, f), secrets)
		}
	}
	if code := svc.stop(t); code != 0 {
		t.Errorf("easgate run exited %d", code)
	}
	assertNoSecret(t, "easgate run's output", []byte(svc.logs()), secrets)
	logData, err := os.ReadFile(filepath.Join(filepath.Dir(info.ConfigFile), "easgate.log"))
	if err == nil {
		assertNoSecret(t, "the service's log file", logData, secrets)
	}
}

// TestLooseSecretFilePermissionsWarn makes each secret file readable by
// others in turn: every command warns, naming the file and the fix, never
// the secret; and the files easgate creates itself (store, log) are 0600.
func TestLooseSecretFilePermissionsWarn(t *testing.T) {
	s := startSim(t, 10, 3)
	cfg := s.Info.ConfigFile
	secrets := secretsOf(s)
	if r := run(t, "sync", "--config", cfg); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("sync with 0600 secret files: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, f := range []string{"easgate.db", "easgate.log"} {
		fi, err := os.Stat(filepath.Join(s.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is mode %04o, want 0600", f, fi.Mode().Perm())
		}
	}
	tests := []struct {
		name string
		file string
		key  string
		mode os.FileMode
	}{
		{name: "exchange password readable by all", file: "exchange-password", key: "exchange.password_file", mode: 0o644},
		{name: "graph secret readable by the group", file: "graph-secret", key: "intune.client_secret_file", mode: 0o640},
		{name: "smtp password writable by others", file: "smtp-password", key: "notify.smtp.password_file", mode: 0o602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(s.Dir, tt.file)
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(p, 0o600) })
			for _, args := range [][]string{{"config", "validate"}, {"runs"}} {
				r := run(t, append(args, "--config", cfg)...)
				if r.code != 0 {
					t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
				}
				want := fmt.Sprintf("warning: %s: %s is readable by others (mode %04o); chmod 600 it", tt.key, p, tt.mode)
				if !strings.Contains(r.stderr, want) {
					t.Errorf("%v: stderr %q, want %q", args, r.stderr, want)
				}
				assertNoSecret(t, fmt.Sprintf("%v's output", args), []byte(r.stdout+r.stderr), secrets)
				if bytes.Count([]byte(r.stderr), []byte("warning:")) != 1 {
					t.Errorf("%v: want exactly one warning: %q", args, r.stderr)
				}
			}
		})
	}

	// The application's certificate holds its private key.
	t.Run("graph certificate readable by all", func(t *testing.T) {
		cert := filepath.Join(s.Dir, "app.pem")
		if err := os.WriteFile(cert, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		editConfig(t, s, "client_secret_file: "+filepath.Join(s.Dir, "graph-secret"), "certificate_file: "+cert)
		r := run(t, "config", "validate", "--config", cfg)
		want := fmt.Sprintf("warning: intune.certificate_file: %s is readable by others (mode 0644); chmod 600 it", cert)
		if r.code != 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr %q; want %q", r.code, r.stderr, want)
		}
	})
}
