package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"easgate/engine/sim"
)

// simProcess is a running `easgate sim --commands`.
type simProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *tailBuffer
	info   sim.Info
	mu     sync.Mutex // one command at a time
	done   chan error
}

// SimOptions shape one simulated organisation.
type SimOptions struct {
	Users      int
	Seed       uint64
	CostScale  float64
	Parallel   int
	ApplyBatch int
	Dir        string // the simulators' directory, which holds the store too
}

// startSim starts the simulators in a process of their own and waits for
// their first line.
func startSim(ctx context.Context, binary string, o SimOptions) (*simProcess, error) {
	args := []string{"sim", "--commands", "--users", strconv.Itoa(o.Users), "--seed", strconv.FormatUint(o.Seed, 10),
		"--dir", o.Dir, "--cost-scale", strconv.FormatFloat(o.CostScale, 'f', -1, 64),
		"--parallel", strconv.Itoa(o.Parallel), "--apply-batch", strconv.Itoa(o.ApplyBatch)}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "EASGATE_CONFIG=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &simProcess{cmd: cmd, stdin: stdin, stderr: &tailBuffer{max: 16 << 10}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start easgate sim: %w", err)
	}
	go func() { p.done <- cmd.Wait() }()
	p.lines = bufio.NewScanner(stdout)
	p.lines.Buffer(make([]byte, 64<<10), 16<<20)
	first := make(chan error, 1)
	go func() {
		if !p.lines.Scan() {
			first <- fmt.Errorf("easgate sim printed nothing: %v: %s", p.lines.Err(), p.stderr)
			return
		}
		first <- json.Unmarshal(p.lines.Bytes(), &p.info)
	}()
	select {
	case err = <-first:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(10 * time.Minute):
		err = errors.New("easgate sim did not start within 10 minutes")
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("easgate sim: %w", err)
	}
	return p, nil
}

// command sends one command line and decodes its answer's field key into v.
func (p *simProcess) command(line, key string, v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		return fmt.Errorf("send %q to easgate sim: %w", line, err)
	}
	if !p.lines.Scan() {
		return fmt.Errorf("easgate sim did not answer %q: %v: %s", line, p.lines.Err(), p.stderr)
	}
	var answer map[string]json.RawMessage
	if err := json.Unmarshal(p.lines.Bytes(), &answer); err != nil {
		return fmt.Errorf("answer to %q: %w", line, err)
	}
	if e, ok := answer["error"]; ok {
		return fmt.Errorf("easgate sim: %s", e)
	}
	raw, ok := answer[key]
	if !ok {
		return fmt.Errorf("answer to %q lacks %q", line, key)
	}
	return json.Unmarshal(raw, v)
}

// counters reads the simulators' counters.
func (p *simProcess) counters() (sim.Counters, error) {
	var c sim.Counters
	err := p.command("counters", "counters", &c)
	return c, err
}

// churn changes the organisation as between two runs.
func (p *simProcess) churn(c sim.Churn) (sim.Churn, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return sim.Churn{}, err
	}
	var done sim.Churn
	err = p.command("churn "+string(b), "churn", &done)
	return done, err
}

// close ends the simulators: closing stdin stops them; a process that
// does not stop is killed.
func (p *simProcess) close() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
		return
	case <-time.After(20 * time.Second):
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Measure is what one `easgate sync` process cost, measured from outside.
type Measure struct {
	Wall time.Duration `json:"wall"`
	// CPU is the process's user and system time (rusage).
	CPU  time.Duration `json:"cpu"`
	User time.Duration `json:"user"`
	Sys  time.Duration `json:"sys"`
	// MaxRSS is the peak resident set size in bytes (rusage ru_maxrss).
	MaxRSS int64 `json:"max_rss"`
	// Written is what the process wrote to disk (rusage ru_oublock, in
	// 512-byte blocks); Store the store file's size afterwards.
	Written int64 `json:"written"`
	Store   int64 `json:"store"`
	// AnonRSS and FileRSS are the largest anonymous (heap) and file-backed
	// (the store's memory map, the binary) resident sizes seen while the
	// process ran, sampled every 100 ms from /proc; zero where that is
	// not available.
	AnonRSS int64 `json:"anon_rss"`
	FileRSS int64 `json:"file_rss"`
}

// syncRun is one `easgate sync` process and what it printed.
type syncRun struct {
	Measure Measure
	Summary runSummary
	Stderr  string
}

// runSummary is the part of `sync --output json` the harness reads.
type runSummary struct {
	Run struct {
		ID     string `json:"id"`
		Kind   string `json:"kind"`
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"run"`
	Counts struct {
		EASDevices        int `json:"eas_devices"`
		MDMDevices        int `json:"mdm_devices"`
		Merged            int `json:"merged"`
		Blocked           int `json:"blocked"`
		ChangesPlanned    int `json:"changes_planned"`
		ChangesApplied    int `json:"changes_applied"`
		ChangesFailed     int `json:"changes_failed"`
		NotificationsSent int `json:"notifications_sent"`
	} `json:"counts"`
	Problems []string `json:"problems"`
	Plan     *struct {
		Changes []planChange `json:"changes"`
	} `json:"plan"`
}

// planChange is a change of a dry run's plan.
type planChange struct {
	Mailbox  string `json:"mailbox"`
	DeviceID string `json:"device_id"`
	List     string `json:"list"`
	Op       string `json:"op"`
}

// runSync runs `easgate sync` with args against config and measures it.
// The run must finish with status succeeded (or dry-run for a dry run).
func runSync(ctx context.Context, binary, config, store string, env []string, args ...string) (*syncRun, error) {
	full := append([]string{"sync", "--config", config, "--output", "json", "--yes"}, args...)
	cmd := exec.CommandContext(ctx, binary, full...)
	cmd.Env = append(append(os.Environ(), "EASGATE_CONFIG="), env...)
	var stdout strings.Builder
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	start := time.Now()
	err := cmd.Start()
	var anon, file int64
	if err == nil {
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			sampleRSS(cmd.Process.Pid, stop, &anon, &file)
		}()
		err = cmd.Wait()
		close(stop)
		<-sampled
	}
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		return nil, fmt.Errorf("easgate sync: %w", err)
	}
	r := &syncRun{Stderr: stderr.String()}
	r.Measure = measureOf(cmd.ProcessState, wall)
	r.Measure.AnonRSS, r.Measure.FileRSS = anon, file
	if fi, serr := os.Stat(store); serr == nil {
		r.Measure.Store = fi.Size()
	}
	if err != nil {
		return r, fmt.Errorf("easgate sync %s: %w: %s", strings.Join(args, " "), err, r.Stderr)
	}
	if err := json.Unmarshal([]byte(stdout.String()), &r.Summary); err != nil {
		return r, fmt.Errorf("easgate sync output: %w", err)
	}
	if s := r.Summary.Run.Status; s != "succeeded" && s != "dry-run" {
		return r, fmt.Errorf("easgate sync ended %s: %s", s, r.Summary.Run.Error)
	}
	return r, nil
}

// measureOf reads a finished process's rusage.
func measureOf(ps *os.ProcessState, wall time.Duration) Measure {
	m := Measure{Wall: wall, User: ps.UserTime(), Sys: ps.SystemTime()}
	m.CPU = m.User + m.Sys
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		m.MaxRSS = int64(ru.Maxrss) * 1024 // kilobytes on Linux
		m.Written = int64(ru.Oublock) * 512
	}
	return m
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// storePath is where the simulators' config puts the store.
func storePath(simDir string) string { return filepath.Join(simDir, "easgate.db") }

// sampleRSS reads the process's RssAnon and RssFile from /proc every
// 100 ms until stop, keeping the largest of each.
func sampleRSS(pid int, stop <-chan struct{}, anon, file *int64) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				k, v, ok := strings.Cut(line, ":")
				if !ok {
					continue
				}
				f := strings.Fields(v)
				if len(f) != 2 || f[1] != "kB" {
					continue
				}
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					continue
				}
				switch k {
				case "RssAnon":
					*anon = max(*anon, n*1024)
				case "RssFile":
					*file = max(*file, n*1024)
				}
			}
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}
