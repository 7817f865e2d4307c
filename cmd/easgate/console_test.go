package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"easgate/engine"
	"easgate/engine/sim"
)

// TestConsoleInTmux is the console's acceptance test: the real binary's
// console, in a real terminal (tmux, 80×24, TERM=xterm-256color), against
// `easgate sim` in another process. It runs a full sync, finds a user the
// sync blocked with /, opens the device's page, resends the enrollment
// mail (and finds it in the SMTP sink's spool), watches a quick sync's
// progress and quits; after each step the pane must be coherent. The panes
// are saved under $EASGATE_TEST_ARTIFACTS/console when that is set, else in
// the test's temporary directory (the log says where).
func TestConsoleInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("console acceptance test in tmux")
	}
	tmuxPath, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed")
	}
	dir := t.TempDir()
	artifacts := filepath.Join(dir, "panes")
	if a := os.Getenv("EASGATE_TEST_ARTIFACTS"); a != "" {
		artifacts = filepath.Join(a, "console")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured panes go to %s", artifacts)

	simProc, info := startSimProcess(t, filepath.Join(dir, "sim"), 200)
	cfg := info.ConfigFile

	// A dry run names a device the first sync will block: the user the
	// admin will look for.
	dry := run(t, "sync", "--config", cfg, "--dry-run", "--output", "json")
	if dry.code != 0 {
		t.Fatalf("dry run: exit %d: %s", dry.code, dry.stderr)
	}
	var out struct {
		Plan *engine.Plan `json:"plan"`
	}
	if err := json.Unmarshal([]byte(dry.stdout), &out); err != nil || out.Plan == nil {
		t.Fatalf("dry run output: %v\n%s", err, dry.stdout)
	}
	var target engine.Change
	for _, c := range out.Plan.Changes {
		if c.List == engine.ListBlocked && c.Op == engine.OpAdd {
			target = c
			break
		}
	}
	if target.Mailbox == "" {
		t.Fatal("the dry run plans no block")
	}
	t.Logf("looking for %s (device %s)", target.Mailbox, target.DeviceID)

	tm := &tmux{t: t, path: tmuxPath, sock: filepath.Join(dir, "tmux.sock"), artifacts: artifacts}
	tm.start(fmt.Sprintf("env TERM=xterm-256color EASGATE_CONFIG= %s tui --config %s; echo EASGATE-EXIT=$?; sleep 600",
		shellQuote(binary), shellQuote(cfg)))

	tm.waitFor("start", "1 Overview", "Exchange", "Last run")

	// A full sync, to its end on screen.
	tm.keys("s")
	tm.waitFor("full-sync", "Last run full succeeded")

	// The blocked user, found with /.
	tm.keys("3", "/")
	tm.literal(target.Mailbox)
	tm.keys("Enter")
	screen := tm.waitFor("filtered", "[3 Blocked", "matching")
	user, _, _ := strings.Cut(target.Mailbox, "@")
	if !strings.Contains(screen, user) || !strings.Contains(screen, "blocked") {
		t.Fatalf("the filter does not show %s blocked:\n%s", target.Mailbox, screen)
	}

	// The device's page: select the planned device's row if the user has
	// several blocked devices.
	tm.keys("Enter")
	screen = tm.waitFor("detail", "EAS record (Exchange)", "Exchange says")
	for i := 0; i < 10 && !strings.Contains(screen, target.DeviceID); i++ {
		tm.keys("BSpace", "Down", "Enter") // backspace goes back; a lone esc would make the next key alt+key
		screen = tm.waitFor(fmt.Sprintf("detail-%d", i), "EAS record (Exchange)")
	}
	if !strings.Contains(screen, target.DeviceID) || !strings.Contains(screen, "blocked") {
		t.Fatalf("the page is not the blocked device %s:\n%s", target.DeviceID, screen)
	}

	// Resend the mail: a preview first, then the SMTP sink gets it.
	spool := filepath.Join(filepath.Dir(cfg), "mail") // easgate sim --dir D spools to D/mail
	before := mails(t, spool)
	tm.keys("m")
	tm.waitFor("preview", "Resend the enrollment notification", "Subject:")
	tm.keys("y")
	tm.waitFor("resent", "notification sent to")
	var sent string
	deadline := time.Now().Add(10 * time.Second)
	for sent == "" && time.Now().Before(deadline) {
		for m := range mails(t, spool) {
			if !before[m] {
				b, _ := os.ReadFile(m)
				if strings.Contains(strings.ToLower(string(b)), strings.ToLower(user)) {
					sent = m
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sent == "" {
		t.Fatalf("the SMTP sink's spool %s holds no new mail to %s", spool, target.Mailbox)
	}

	// A quick sync, held in its first phase while the simulators are
	// stopped, so that its progress is on screen.
	tm.keys("1") // a number leaves the page for its tab
	if err := simProc.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = simProc.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	tm.keys("S")
	tm.waitFor("quick-progress", "quick sync:", "Running")
	resume()
	tm.waitFor("quick-done", "Last run quick succeeded")
	tm.keys("5")
	screen = tm.waitFor("runs", "[5 Runs")
	if strings.Count(screen, "manual") < 2 {
		t.Errorf("the Runs view does not list both manual runs:\n%s", screen)
	}

	// Quit: the console leaves the terminal as it found it.
	tm.keys("q")
	screen = tm.waitFor("quit", "EASGATE-EXIT=0")
	if strings.Contains(screen, "1 Overview") {
		t.Errorf("the console's screen stayed after quitting:\n%s", screen)
	}
}

// startSimProcess runs `easgate sim` with an organisation of users in its
// own process and reads its first line.
func startSimProcess(t *testing.T, dir string, users int) (*exec.Cmd, sim.Info) {
	t.Helper()
	cmd := exec.Command(binary, "sim", "--dir", dir, "--users", strconv.Itoa(users))
	cmd.Env = append(os.Environ(), "EASGATE_CONFIG=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // keep the pipe drained
		}
	}()
	var info sim.Info
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("easgate sim printed nothing: %s", stderr.String())
		}
		if err := json.Unmarshal([]byte(l), &info); err != nil || info.ConfigFile == "" {
			t.Fatalf("easgate sim's first line %q: %v", l, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("easgate sim did not start: %s", stderr.String())
	}
	return cmd, info
}

// mails lists the spooled mails.
func mails(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range files {
		out[f] = true
	}
	return out
}

// tmux drives one session on a private tmux server.
type tmux struct {
	t         *testing.T
	path      string
	sock      string
	artifacts string
	step      int
}

// cmd runs a tmux command on the private server.
func (x *tmux) cmd(args ...string) (string, error) {
	c := exec.Command(x.path, append([]string{"-f", "/dev/null", "-S", x.sock}, args...)...)
	c.Env = append(os.Environ(), "TMUX=")
	out, err := c.CombinedOutput()
	return string(out), err
}

// start opens the session running shell at 80×24.
func (x *tmux) start(shell string) {
	x.t.Helper()
	if out, err := x.cmd("new-session", "-d", "-s", "easgate", "-x", "80", "-y", "24", shell); err != nil {
		x.t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	x.t.Cleanup(func() { _, _ = x.cmd("kill-server") })
}

// keys sends tmux key names.
func (x *tmux) keys(keys ...string) {
	x.t.Helper()
	for _, k := range keys {
		if out, err := x.cmd("send-keys", "-t", "easgate", k); err != nil {
			x.t.Fatalf("tmux send-keys %s: %v: %s", k, err, out)
		}
	}
}

// literal types text.
func (x *tmux) literal(s string) {
	x.t.Helper()
	if out, err := x.cmd("send-keys", "-t", "easgate", "-l", s); err != nil {
		x.t.Fatalf("tmux send-keys -l: %v: %s", err, out)
	}
}

// capture returns the pane's text.
func (x *tmux) capture() string {
	x.t.Helper()
	out, err := x.cmd("capture-pane", "-p", "-t", "easgate")
	if err != nil {
		x.t.Fatalf("tmux capture-pane: %v: %s", err, out)
	}
	return strings.TrimRight(out, "\n")
}

// garbage matches what an escape sequence leaves when a terminal prints it
// instead of obeying it.
var garbage = regexp.MustCompile(`\x1b|\x07|␛|\[\?\d+[hl$]|\[>\d*[a-z]|\d+;\d+[HRu]\b|\]\d+;`)

// waitFor captures the pane until it shows every text, saves it as the
// step's artefact, checks that it is coherent, and returns it.
func (x *tmux) waitFor(step string, texts ...string) string {
	x.t.Helper()
	x.step++
	deadline := time.Now().Add(30 * time.Second)
	var screen string
	for {
		screen = x.capture()
		all := true
		for _, s := range texts {
			if !strings.Contains(screen, s) {
				all = false
				break
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			x.save(step+"-timeout", screen)
			x.t.Fatalf("step %s: the pane never showed %q:\n%s", step, texts, screen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	x.save(step, screen)
	x.coherent(step, screen)
	return screen
}

// save writes a pane to the artefacts.
func (x *tmux) save(step, screen string) {
	name := filepath.Join(x.artifacts, fmt.Sprintf("%02d-%s.txt", x.step, step))
	if err := os.WriteFile(name, []byte(screen+"\n"), 0o644); err != nil {
		x.t.Errorf("save %s: %v", name, err)
	}
}

// coherent checks a pane: no line wider than the terminal, no more lines
// than it has, valid text, no escape sequence printed raw, and no log line
// on the screen.
func (x *tmux) coherent(step, screen string) {
	x.t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) > 24 {
		x.t.Errorf("step %s: %d lines on a 24-line terminal", step, len(lines))
	}
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			x.t.Errorf("step %s: line %d holds %d characters, more than 80: %q", step, i+1, n, l)
		}
	}
	if !utf8.ValidString(screen) {
		x.t.Errorf("step %s: the pane is not valid UTF-8", step)
	}
	if m := garbage.FindString(screen); m != "" {
		x.t.Errorf("step %s: escape garbage %q on screen:\n%s", step, m, screen)
	}
	for _, leak := range []string{"level=", "msg="} {
		if strings.Contains(screen, leak) {
			x.t.Errorf("step %s: a log line (%q) reached the screen:\n%s", step, leak, screen)
		}
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
