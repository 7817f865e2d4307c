package tui

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
)

// flow runs the console as a real Bubble Tea program on a fake terminal.
type flow struct {
	t  *testing.T
	tm *teatest.TestModel
}

// newFlow starts the console over f.
func newFlow(t *testing.T, f *fakeAPI) *flow {
	t.Helper()
	if testing.Short() {
		t.Skip("full console flow")
	}
	m := New(f, Options{Title: "easgate demo", Now: clock})
	m.actor = "tester"
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	t.Cleanup(func() { _ = tm.Quit() })
	return &flow{t: t, tm: tm}
}

// waitFor waits until the screen has shown every one of texts.
func (fl *flow) waitFor(texts ...string) {
	fl.t.Helper()
	teatest.WaitFor(fl.t, fl.tm.Output(), func(b []byte) bool {
		for _, s := range texts {
			if !bytes.Contains(b, []byte(s)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

// press sends keys.
func (fl *flow) press(keys ...string) {
	for _, k := range keys {
		fl.tm.Send(keyPress(k))
	}
}

// quit presses q and returns the final model.
func (fl *flow) quit() *Model {
	fl.t.Helper()
	fl.press("q")
	final, ok := fl.tm.FinalModel(fl.t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
	if !ok {
		fl.t.Fatalf("final model is %T", final)
	}
	if final.env.ctx.Err() == nil {
		fl.t.Error("quitting left the console's engine calls running")
	}
	return final
}

// waitUntil polls cond (on the fake's records) until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFlowSyncReviewApprove: a full sync is held by the safety brake, the
// console shows the plan, and the admin approves it.
func TestFlowSyncReviewApprove(t *testing.T) {
	f := newFake()
	f.brake = true
	fl := newFlow(t, f)
	fl.waitFor("Last run")
	fl.press("s")
	fl.waitFor("Held plan", "plan-7", "3 new blocks") // the console switched to the Plan view
	fl.press("A")
	fl.waitFor("Approve plan plan-7?")
	fl.press("enter") // No is the default: enter does not approve
	time.Sleep(100 * time.Millisecond)
	if n := f.callCount("Approve"); n != 0 {
		t.Fatalf("enter approved the plan (%d calls): No must be the default", n)
	}
	fl.press("A", "y")
	waitUntil(t, "approval", func() bool { return slices.Contains(f.did(), "approve plan-7 by tester") })
	fl.waitFor("No plan to review")
	final := fl.quit()
	if final.active != tabPlan {
		t.Errorf("active view = %s, want Plan", tabTitles[final.active])
	}
	reqs := f.syncRequests()
	if len(reqs) != 2 || reqs[1].PlanID != "plan-7" {
		t.Errorf("sync requests = %+v, want the braked run and the approved plan's run", reqs)
	}
}

// TestFlowResendFromUnmerged: the admin previews and resends a user's
// enrollment mail from the Unmerged view.
func TestFlowResendFromUnmerged(t *testing.T) {
	f := newFake()
	fl := newFlow(t, f)
	fl.press("2")
	fl.waitFor("ben.novak")
	fl.press("m")
	fl.waitFor("Resend the enrollment notification", "Subject: Enroll your phone")
	fl.press("enter") // Send is the default of a safe dialog
	waitUntil(t, "resend", func() bool { return len(f.did()) == 1 })
	if got := f.did()[0]; got != "resend [ben.novak@contoso.com/androidc1234567] by tester" {
		t.Errorf("engine was asked %q", got)
	}
	fl.waitFor("notification sent to ben.novak@contoso.com")
	fl.quit()
}

// TestFlowLinkSuggestion: the admin links an unmerged device to the MDM
// record the planner suggests.
func TestFlowLinkSuggestion(t *testing.T) {
	f := newFake()
	fl := newFlow(t, f)
	fl.press("2")
	fl.waitFor("ben.novak", "mdm-ben-p")
	fl.press("l")
	fl.waitFor("Link androidc1234567 to its Intune record", "★ mdm-ben-pixel")
	fl.press("enter") // the suggestion is first and picked
	waitUntil(t, "link", func() bool { return len(f.did()) == 1 })
	if got := f.did()[0]; got != "link ben.novak@contoso.com/androidc1234567 mdm-ben-pixel by tester" {
		t.Errorf("engine was asked %q", got)
	}
	fl.waitFor("linked androidc1234567 to MDM record mdm-ben-pixel")
	final := fl.quit()
	if n, _ := final.unmerged.Count(); n != 3 {
		t.Errorf("unmerged view holds %d devices after the link, want 3", n)
	}
}

// TestFlowFilterDetail: the admin finds a blocked user with / and opens
// the device's page.
func TestFlowFilterDetail(t *testing.T) {
	f := newFake()
	fl := newFlow(t, f)
	fl.press("3")
	fl.waitFor("chloe.dubois")
	fl.press("/")
	fl.press(typeText("chloe")...)
	fl.press("enter", "enter")
	fl.waitFor("Device chloe.dubois@contoso.com / SEC1A2B3C4D5E6", "EAS record (Exchange)")
	fl.press("G") // the page's end: the list entries and the journal
	fl.waitFor("on the blocked list since", "add SEC1A2B3C4D5E6 blocked list: ok")
	fl.press("esc")
	final := fl.quit()
	if len(final.stack) != 0 || final.active != tabBlocked {
		t.Errorf("esc left %d pages open on %s; want the Blocked view", len(final.stack), tabTitles[final.active])
	}
	if got := final.blocked.table.filter; got != "chloe" {
		t.Errorf("filter = %q, want it kept after the detail", got)
	}
	if f.callCount("Device") == 0 {
		t.Error("the detail page did not read the device")
	}
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
			for f.callCount("Subscribe") == 0 || !strings.Contains(string(screen.Bytes()), "ex01.contoso.local") {
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
