package tui

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"easgate/engine"
)

// TestFlow runs the console as a real Bubble Tea program: it starts, shows
// each view, runs a sync with s, shows the new run, and quits with q.
func TestFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("full console flow")
	}
	f := newFake()
	m := New(f, Options{Title: "easgate demo", Now: clock})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	t.Cleanup(func() { _ = tm.Quit() })

	waitFor := func(what string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(what)) },
			teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	}
	press := func(k string) { tm.Send(keyPress(k)) }

	waitFor("ben.novak") // Unmerged
	press("2")
	waitFor("felix.kowalski") // Blocked
	press("3")
	waitFor("startup") // Sync runs
	press("s")
	waitFor("manual") // the new run's trigger, in Sync runs
	press("q")

	final, ok := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if !ok {
		t.Fatalf("final model is %T", final)
	}
	reqs := f.syncRequests()
	if len(reqs) != 1 || reqs[0].Kind != engine.RunFull || reqs[0].Trigger != engine.TriggerManual || reqs[0].Actor == "" {
		t.Errorf("sync requests = %+v, want one manual full sync with an actor", reqs)
	}
	rv := final.views[viewRuns].(*runsView)
	if len(rv.runs) != 4 || rv.runs[0].ID != "run-4" {
		t.Errorf("sync runs view holds %d runs, newest %q; want 4, newest run-4", len(rv.runs), firstRunID(rv.runs))
	}
	if final.active != viewRuns {
		t.Errorf("active view = %d, want sync runs", final.active)
	}
	if final.env.ctx.Err() == nil {
		t.Error("quitting left the console's engine calls running")
	}
}

func firstRunID(runs []engine.Run) string {
	if len(runs) == 0 {
		return ""
	}
	return runs[0].ID
}

// TestRun runs the console program on a fake terminal: it returns nil both
// when the user quits and when its context ends, and ends its engine calls.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("full console flow")
	}
	tests := []struct {
		name string
		stop func(cancel context.CancelFunc, keys io.Writer)
	}{
		{name: "q", stop: func(_ context.CancelFunc, keys io.Writer) { _, _ = io.WriteString(keys, "q") }},
		{name: "context ends", stop: func(cancel context.CancelFunc, _ io.Writer) { cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			keysR, keysW := io.Pipe()
			t.Cleanup(func() { _ = keysW.Close() })
			var screen lockedBuffer
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, f, Options{Now: clock}, tea.WithInput(keysR), tea.WithOutput(&screen),
					tea.WithoutSignals(), tea.WithWindowSize(80, 24))
			}()
			deadline := time.Now().Add(5 * time.Second)
			for f.callCount("Subscribe") == 0 || !bytes.Contains(screen.Bytes(), []byte("ben.novak")) {
				if time.Now().After(deadline) {
					t.Fatalf("console did not start; screen:\n%s", screen.Bytes())
				}
				time.Sleep(10 * time.Millisecond)
			}
			tt.stop(cancel, keysW)
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("run = %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not return")
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for the program's writer and the
// test's reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes returns a copy of what was written.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}
