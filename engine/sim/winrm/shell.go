package winrm

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// exitTerminated is the exit code Windows reports for a process ended by a
// terminate signal (STATUS_CONTROL_C_EXIT).
const exitTerminated = -1073741510

// shell is one remote shell (a winrshost.exe on Windows) of one user.
type shell struct {
	id      string
	owner   string
	created time.Time
	lastUse atomic.Int64 // unix nanoseconds of the last request

	mu       sync.Mutex
	commands map[string]*command
}

func (sh *shell) touch() { sh.lastUse.Store(time.Now().UnixNano()) }

func (sh *shell) lastUsed() time.Time { return time.Unix(0, sh.lastUse.Load()) }

// command is one command line running in a shell: its stdin, buffered
// output streams and state. All fields below mu are guarded by it;
// changed is closed and replaced whenever any of them changes, which is
// what long-polling receives and blocked writers wait on.
type command struct {
	id     string
	cancel context.CancelFunc
	outCap int // bytes a stream buffers before the program's writes block

	mu         sync.Mutex
	changed    chan struct{}
	stdin      []byte
	stdinEnd   bool
	stdout     []byte
	stderr     []byte
	done       bool
	exitCode   int
	terminated bool
}

func newCommand(id string, outCap int, cancel context.CancelFunc) *command {
	return &command{id: id, outCap: outCap, cancel: cancel, changed: make(chan struct{})}
}

// notify wakes everything waiting on the command. c.mu must be held.
func (c *command) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// finish records the program's exit.
func (c *command) finish(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	c.exitCode = code
	c.notify()
}

// terminate ends the command as a terminate signal does: the program's
// context is cancelled, blocked reads and writes fail, and receives answer
// with the command done.
func (c *command) terminate() {
	c.mu.Lock()
	if !c.terminated {
		c.terminated = true
		c.notify()
	}
	c.mu.Unlock()
	c.cancel()
}

// addStdin appends stdin data; end closes the stream.
func (c *command) addStdin(data []byte, end bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stdinEnd || c.terminated {
		return
	}
	c.stdin = append(c.stdin, data...)
	if end {
		c.stdinEnd = true
	}
	c.notify()
}

// output is what one receive takes from a command.
type output struct {
	stdout, stderr []byte
	done           bool // the command finished and both streams are drained
	exitCode       int
}

// receive waits until the command has output or is done, at most timeout,
// and takes up to budget bytes of output. It reports false when the wait
// ran out with nothing to answer.
func (c *command) receive(ctx context.Context, timeout time.Duration, budget int) (output, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		if len(c.stdout) > 0 || len(c.stderr) > 0 || c.done || c.terminated {
			var out output
			n := min(budget, len(c.stdout))
			out.stdout, c.stdout = take(c.stdout, n)
			out.stderr, c.stderr = take(c.stderr, min(budget-n, len(c.stderr)))
			drained := len(c.stdout) == 0 && len(c.stderr) == 0
			switch {
			case c.terminated && !c.done:
				out.done, out.exitCode = true, exitTerminated
			case c.done && drained:
				out.done, out.exitCode = true, c.exitCode
			}
			c.notify() // writers waiting for room
			c.mu.Unlock()
			return out, true
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return output{}, false
		case <-ctx.Done():
			return output{}, false
		}
	}
}

// take splits the first n bytes off buf, copying them so the buffer's
// backing array can be reused.
func take(buf []byte, n int) (head, rest []byte) {
	if n <= 0 {
		return nil, buf
	}
	head = append([]byte(nil), buf[:n]...)
	rest = buf[n:]
	if len(rest) == 0 {
		rest = buf[:0]
	}
	return head, rest
}

// stdinReader is the program's end of the command's stdin.
type stdinReader struct{ c *command }

func (r stdinReader) Read(p []byte) (int, error) {
	c := r.c
	for {
		c.mu.Lock()
		switch {
		case c.terminated:
			c.mu.Unlock()
			return 0, ErrTerminated
		case len(c.stdin) > 0:
			n := copy(p, c.stdin)
			c.stdin = c.stdin[n:]
			c.mu.Unlock()
			return n, nil
		case c.stdinEnd:
			c.mu.Unlock()
			return 0, io.EOF
		}
		ch := c.changed
		c.mu.Unlock()
		<-ch
	}
}

// streamWriter is the program's end of stdout or stderr. Writes block while
// the stream holds outCap bytes nobody received, as a full pipe does.
type streamWriter struct {
	c      *command
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := &c.stdout
	if w.stderr {
		buf = &c.stderr
	}
	for len(*buf) >= c.outCap && !c.terminated {
		ch := c.changed
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
	if c.terminated {
		return 0, ErrTerminated
	}
	*buf = append(*buf, p...)
	c.notify()
	return len(p), nil
}

// newUUID returns a random upper-case UUID, as Windows names shells and
// commands, with prefix in front.
func newUUID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand.Read aborts the process instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s%X-%X-%X-%X-%X", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
