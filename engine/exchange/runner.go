package exchange

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// Limits on what a run reads.
const (
	maxLine   = 1 << 20 // a longer stdout line is malformed
	maxStderr = 4 << 20 // stderr beyond this is dropped
)

// runResult is what one PowerShell process produced besides its stdout lines.
type runResult struct {
	server   string // the server that ran it, as configured
	exitCode int
	stderr   *stderrRecords
	lines    int   // stdout lines seen
	bytes    int64 // stdout bytes
	elapsed  time.Duration
}

// lineFunc receives one stdout line (without its line end) and its
// 1-based number. The slice is only valid during the call.
type lineFunc func(n int, line []byte)

// opName is a script's name without its version, as metrics name it.
func opName(script string) string {
	name, _, _ := strings.Cut(script, "/")
	return name
}

// payloadFunc builds a script's stdin around the session part for the
// server it runs on.
type payloadFunc func(sessionPayload) any

// run runs a script on the first server that takes it, with its payload
// as stdin, and hands every stdout line to onLine as it arrives. It
// returns an error wrapping ErrConnection when no server could be reached
// or the run was cut off; the exit code and stderr are the caller's to
// judge.
func (c *Client) run(ctx context.Context, s Script, payload payloadFunc, onLine lineFunc) (*runResult, error) {
	return c.runOn(ctx, nil, s, payload, onLine)
}

// runOn runs a script on one server (pin), or on the first that takes it.
func (c *Client) runOn(ctx context.Context, pin *server, s Script, payload payloadFunc, onLine lineFunc) (*runResult, error) {
	return c.runFed(ctx, pin, s, payload, nil, onLine)
}

// runFed runs a script like runOn; when feed is not nil, the payload goes
// out as the first line of stdin, followed by every chunk received from
// feed as it comes, and stdin ends when feed is closed (or ctx ends): the
// script reads its work a line at a time while it runs.
func (c *Client) runFed(ctx context.Context, pin *server, s Script, payload payloadFunc, feed <-chan []byte, onLine lineFunc) (*runResult, error) {
	stdin := func(srv *server) ([]byte, error) {
		b, err := asciiJSON(payload(c.session(srv)))
		if err != nil {
			return nil, fmt.Errorf("encode payload of %s: %w", s.Name, err)
		}
		if feed != nil {
			b = append(b, '\n')
		}
		return b, nil
	}
	start := time.Now()
	res, err := c.command(ctx, pin, s.Name, commandLine(s), stdin, feed, onLine)
	outcome := err
	if outcome == nil {
		outcome = scriptError(s, res)
	}
	c.observe(opName(s.Name), time.Since(start), outcome)
	return res, err
}

// command runs a command line in a shell on the first server that takes
// it, in failover order (or on pin alone). A server that cannot be reached
// is skipped for CoolDown and the command goes to the next; once a
// command has started, its outcome is final.
func (c *Client) command(ctx context.Context, pin *server, name, line string, stdin func(*server) ([]byte, error), feed <-chan []byte, onLine lineFunc) (*runResult, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, &connError{kind: ErrConnection, err: fmt.Errorf("wait for a free powershell slot: %w", ctx.Err())}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
	defer cancel()
	servers := c.order()
	if pin != nil {
		servers = []*server{pin}
	}
	var failures []error
	for _, srv := range servers {
		in, err := stdin(srv)
		if err != nil {
			return nil, err
		}
		attempt := time.Now()
		res, started, err := srv.execute(ctx, name, line, in, feed, onLine)
		switch {
		case started:
			srv.answered(err)
			c.setActive(srv)
			return res, err
		case err == nil:
			return res, nil // not reached: execute starts or fails
		case errors.Is(err, ErrConnection) && ctx.Err() == nil:
			srv.failed(err)
			c.observe("connect", time.Since(attempt), err)
			c.log.Warn("exchange server skipped", logServer, srv.name, logError, err, "cool_down", c.cfg.CoolDown)
			failures = append(failures, err)
			continue
		default:
			srv.answered(err) // refused credentials or cancelled: no other server would do better
			return nil, err
		}
	}
	return nil, &allFailed{errs: failures}
}

// execute runs a command line in a shell of the server: an idle one if
// there is one (and a fresh one if the server forgot it), else a new one.
// started reports whether the command got to run; if it did not, the
// server took no action.
func (s *server) execute(ctx context.Context, name, line string, stdin []byte, feed <-chan []byte, onLine lineFunc) (res *runResult, started bool, err error) {
	for attempt := 0; ; attempt++ {
		sh, reused, err := s.acquire(ctx)
		if err != nil {
			return nil, false, err
		}
		res, started, err := sh.run(ctx, name, line, stdin, feed, onLine)
		if started {
			if err == nil && ctx.Err() == nil {
				s.release(sh)
			} else {
				sh.destroy() // Signal went out; Delete too, so no shell outlives a failed run
			}
			res.server = s.name
			return res, true, err
		}
		s.c.background(sh.destroy)
		if reused && attempt == 0 && ctx.Err() == nil {
			continue // the server forgot the idle shell (restart, idle timeout): open a fresh one
		}
		return nil, false, err
	}
}

// run runs one command line in the shell, with stdin, handing every
// stdout line to onLine as it arrives. started reports whether the server
// accepted the command.
func (sh *pooledShell) run(ctx context.Context, name, line string, stdin []byte, feed <-chan []byte, onLine lineFunc) (res *runResult, started bool, err error) {
	srv := sh.srv
	log := srv.c.log.With("script", name, logServer, srv.name)
	sh.tr.bind(ctx)
	out := newCommandOutput()
	sh.tr.capture(out)
	defer out.close()
	start := time.Now()
	cmd, err := sh.shell.Execute(line)
	if err != nil {
		return nil, false, fmt.Errorf("start %s on %s: %w", name, srv.name, ctxErr(ctx, err))
	}
	out.follow(cmd.Stdout, cmd.Stderr)
	log.Debug("command started", "stdin_bytes", len(stdin))

	// stdin: the payload, then end-of-stream at once, so a script reading
	// stdin to its end goes on (RunWithString would send the end only
	// after the command finished).
	var wg sync.WaitGroup
	wg.Add(2)
	exited := make(chan struct{}) // the command's output ended: it wants no more stdin
	go func() {
		defer wg.Done()
		// The library sends EnvelopeSize-1000 bytes per Send, which base64
		// grows past EnvelopeSize; keep each Send within it.
		chunk := max(1024, (srv.c.cfg.EnvelopeSize-2048)/4*3)
		send := func(b []byte) bool {
			for rest := b; len(rest) > 0; {
				n := min(chunk, len(rest))
				if _, err := cmd.Stdin.Write(rest[:n]); err != nil {
					if ctx.Err() == nil {
						log.Warn("send stdin failed", logError, err)
					}
					return false
				}
				rest = rest[n:]
			}
			return true
		}
		if !send(stdin) {
			return
		}
		for feed != nil {
			select {
			case b, ok := <-feed:
				if !ok {
					feed = nil
				} else if !send(b) {
					return
				}
			case <-ctx.Done():
				return
			case <-exited:
				return
			}
		}
		if err := cmd.Stdin.Close(); err != nil && ctx.Err() == nil {
			log.Warn("close stdin failed", logError, err)
		}
	}()
	res = &runResult{server: srv.name}
	var stderr []byte
	go func() {
		defer wg.Done()
		stderr, _ = io.ReadAll(io.LimitReader(out.stderrR, maxStderr))
		_, _ = io.Copy(io.Discard, out.stderrR)
	}()
	readErr := readLines(out.stdoutR, res, onLine)
	close(exited)
	wg.Wait()
	cmd.Wait()
	sh.tr.detach()
	if err := cmd.Close(); err != nil {
		log.Debug("signal command failed", logError, err)
	}
	res.exitCode = cmd.ExitCode()
	res.stderr = parseStderr(stderr)
	res.elapsed = time.Since(start)
	if readErr != nil {
		return res, true, fmt.Errorf("read output of %s on %s: %w", name, srv.name, ctxErr(ctx, readErr))
	}
	if ctx.Err() != nil {
		return res, true, ctxErr(ctx, ctx.Err())
	}
	log.Debug("command finished", "exit_code", res.exitCode, "lines", res.lines, "stdout_bytes", res.bytes, "duration", res.elapsed)
	return res, true, nil
}

// ctxErr prefers the context's error, which says why a request failed when
// the run was cancelled or ran out of time.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return &connError{kind: ErrConnection, err: fmt.Errorf("%w (%v)", ctx.Err(), err)}
	}
	if errors.Is(err, ErrConnection) || errors.Is(err, ErrUnauthorized) {
		return err
	}
	return classify(err)
}

// readLines splits stdout into lines, without their CR LF, and hands each
// to onLine. A line longer than maxLine is handed over cut at maxLine
// bytes, which makes it malformed.
func readLines(r io.Reader, res *runResult, onLine lineFunc) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		res.bytes += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long) < maxLine {
				long = append(long, chunk[:min(len(chunk), maxLine-len(long))]...)
			}
			continue
		}
		line := chunk
		if long != nil {
			if len(long) < maxLine {
				long = append(long, chunk[:min(len(chunk), maxLine-len(long))]...)
			}
			line, long = long, nil
		}
		line = trimEOL(line)
		if len(line) > 0 || err == nil {
			res.lines++
			onLine(res.lines, line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiJSON encodes v as JSON with every character outside printable ASCII
// escaped, so the payload reads the same in any console code page.
func asciiJSON(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.Grow(len(j))
	for _, r := range string(j) {
		if r >= 0x20 && r < 0x7f {
			b.WriteByte(byte(r))
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return []byte(b.String()), nil
}
