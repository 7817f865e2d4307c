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

	"github.com/masterzen/winrm"
)

// Limits on what a run reads.
const (
	maxLine   = 1 << 20 // a longer stdout line is malformed
	maxStderr = 4 << 20 // stderr beyond this is dropped
)

// runResult is what one PowerShell process produced besides its stdout lines.
type runResult struct {
	exitCode int
	stderr   *stderrRecords
	lines    int   // stdout lines seen
	bytes    int64 // stdout bytes
	elapsed  time.Duration
}

// lineFunc receives one stdout line (without its line end) and its
// 1-based number. The slice is only valid during the call.
type lineFunc func(n int, line []byte)

// run runs a script in a new shell on the server, with payload as its
// stdin, and hands every stdout line to onLine as it arrives. It returns
// an error wrapping ErrConnection when the server could not be reached or
// the run was cut off; the exit code and stderr are the caller's to judge.
func (c *Client) run(ctx context.Context, s Script, payload any, onLine lineFunc) (*runResult, error) {
	stdin, err := asciiJSON(payload)
	if err != nil {
		return nil, fmt.Errorf("encode payload of %s: %w", s.Name, err)
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: wait for a free powershell slot: %w", ErrConnection, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CommandTimeout)
	defer cancel()
	start := time.Now()
	log := c.log.With("script", s.Name, "server", c.server)

	client, tr, err := c.winrmClient(ctx)
	if err != nil {
		return nil, err
	}
	defer tr.close()
	shell, err := client.CreateShell()
	if err != nil {
		return nil, fmt.Errorf("open shell on %s: %w", c.server, ctxErr(ctx, err))
	}
	defer func() {
		tr.detach()
		if err := shell.Close(); err != nil {
			log.Warn("delete shell failed", "error", err)
		}
	}()
	cmd, err := shell.Execute(commandLine(s))
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", s.Name, c.server, ctxErr(ctx, err))
	}
	log.Debug("powershell started", "stdin_bytes", len(stdin))

	// stdin: the payload, then end-of-stream at once, so a script reading
	// stdin to its end goes on (RunWithString would send the end only
	// after the command finished).
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// The library sends EnvelopeSize-1000 bytes per Send, which base64
		// grows past EnvelopeSize; keep each Send within it.
		chunk := max(1024, (c.cfg.EnvelopeSize-2048)/4*3)
		for rest := stdin; len(rest) > 0; {
			n := min(chunk, len(rest))
			if _, err := cmd.Stdin.Write(rest[:n]); err != nil {
				log.Warn("send stdin failed", "error", err)
				return
			}
			rest = rest[n:]
		}
		if err := cmd.Stdin.Close(); err != nil {
			log.Warn("close stdin failed", "error", err)
		}
	}()
	res := &runResult{}
	var stderr []byte
	go func() {
		defer wg.Done()
		stderr, _ = io.ReadAll(io.LimitReader(cmd.Stderr, maxStderr))
		_, _ = io.Copy(io.Discard, cmd.Stderr)
	}()
	readErr := readLines(cmd.Stdout, res, onLine)
	wg.Wait()
	cmd.Wait()
	tr.detach()
	if err := cmd.Close(); err != nil {
		log.Debug("signal command failed", "error", err)
	}
	res.exitCode = cmd.ExitCode()
	res.stderr = parseStderr(stderr)
	res.elapsed = time.Since(start)
	if readErr != nil {
		return res, fmt.Errorf("read output of %s on %s: %w", s.Name, c.server, ctxErr(ctx, readErr))
	}
	log.Debug("powershell finished", "exit_code", res.exitCode, "lines", res.lines, "stdout_bytes", res.bytes, "duration", res.elapsed)
	return res, nil
}

// winrmClient returns a WinRM client whose every request is bound to ctx
// until its transport is detached. Parameters come from NewParameters:
// DefaultParameters is shared by every user of the library.
func (c *Client) winrmClient(ctx context.Context) (*winrm.Client, *transport, error) {
	tr := &transport{hc: c.hc, url: c.url, user: c.cfg.Username, pass: c.cfg.Password, wire: &c.wire, ctx: ctx}
	params := winrm.NewParameters(fmt.Sprintf("PT%dS", int(c.cfg.OperationTimeout/time.Second)), "en-US", c.cfg.EnvelopeSize)
	params.TransportDecorator = func() winrm.Transporter { return tr }
	client, err := winrm.NewClientWithParameters(c.endpoint, c.cfg.Username, c.cfg.Password, params)
	if err != nil {
		return nil, nil, fmt.Errorf("winrm client for %s: %w", c.server, err)
	}
	return client, tr, nil
}

// ctxErr prefers the context's error, which says why a request failed when
// the run was cancelled or ran out of time.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w (%v)", ErrConnection, ctx.Err(), err)
	}
	if errors.Is(err, ErrConnection) || errors.Is(err, ErrUnauthorized) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrConnection, err)
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
