package exchange_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/exchange"
	simexchange "easgate/engine/sim/exchange"
	simwinrm "easgate/engine/sim/winrm"
)

func TestOneShellServesConsecutiveCommands(t *testing.T) {
	o := generated(20)
	e := newEnv(t, o)
	ctx := context.Background()
	if _, err := e.client.Inventory(ctx, engine.InventoryQuery{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := e.client.ApplyChanges(ctx, []engine.Change{{Mailbox: o.Users[i].UPN, DeviceID: "ApplSHELL01", List: engine.ListBlocked, Op: engine.OpAdd}}); err != nil {
			t.Fatal(err)
		}
	}
	st := e.winrm.Stats()
	if st.ShellsCreated != 1 || st.Commands != 3 || st.ShellsOpen != 1 {
		t.Errorf("%d shells created for %d commands, %d open: want one shell for all three, kept for the next", st.ShellsCreated, st.Commands, st.ShellsOpen)
	}
	if err := e.client.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.winrm.Stats().ShellsOpen; n != 0 {
		t.Errorf("%d shells open after Close", n)
	}
	if _, err := e.client.Inventory(ctx, engine.InventoryQuery{}); !errors.Is(err, exchange.ErrClosed) {
		t.Errorf("after Close: err = %v, want ErrClosed", err)
	}
}

func TestIdleShellIsDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, generated(5), func(c *envConfig) { c.client.ShellIdle = 100 * time.Millisecond })
	if _, err := e.client.Inventory(context.Background(), engine.InventoryQuery{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.winrm.Stats().ShellsOpen != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle shell was never deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCancelMidCommandLeavesNoShell cancels an inventory while the server
// streams it (the cost model makes it take seconds): the command is
// signalled, the shell deleted, and the program on the server ends.
func TestCancelMidCommandLeavesNoShell(t *testing.T) {
	t.Parallel()
	var ended atomic.Bool
	var lines atomic.Int64
	e := newEnv(t, generated(300), func(c *envConfig) {
		c.exchange.Cost = simexchange.DefaultCost(1)
		c.exchange.Cost.ProcessStart, c.exchange.Cost.RemoteSession = 0, 0
		c.program = func(p simwinrm.Program) simwinrm.Program {
			return simwinrm.ProgramFunc(func(ctx context.Context, proc *simwinrm.Process) int {
				defer ended.Store(true)
				cp := *proc
				cp.Stdout = countingWriter{proc.Stdout, &lines}
				return p.Run(ctx, &cp)
			})
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for lines.Load() == 0 { // cancel once output flows
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := e.client.Inventory(ctx, engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrConnection) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a connection error wrapping the cancellation", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("returned %v after the start", took)
	}
	if n := e.shellsOpen(); n != 0 {
		t.Errorf("%d shells left open", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !ended.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !ended.Load() {
		t.Error("powershell.exe still runs on the server")
	}
	if h := health(e, e.winrm.Addr()); !h.CoolDownUntil.IsZero() {
		t.Errorf("a cancelled call put the server in a cool-down: %+v", h)
	}
}

type countingWriter struct {
	w interface{ Write([]byte) (int, error) }
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.w.Write(b)
}

func TestCommandDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, generated(5), slow(time.Hour), func(c *envConfig) { c.client.CommandTimeout = 300 * time.Millisecond })
	_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, exchange.ErrConnection) {
		t.Fatalf("err = %v, want the command's deadline", err)
	}
	if n := e.shellsOpen(); n != 0 {
		t.Errorf("%d shells left open", n)
	}
}

func TestAForgottenIdleShellIsReplaced(t *testing.T) {
	e := newEnv(t, generated(5))
	ctx := context.Background()
	if _, err := e.client.Inventory(ctx, engine.InventoryQuery{}); err != nil {
		t.Fatal(err)
	}
	// The kept shell's next Command fails, as on a server that restarted.
	e.winrm.SetFault(simwinrm.OpCommand, simwinrm.Fault{Status: 500, Times: 1})
	if _, err := e.client.Inventory(ctx, engine.InventoryQuery{}); err != nil {
		t.Fatalf("second inventory: %v", err)
	}
	if st := e.winrm.Stats(); st.ShellsCreated != 2 {
		t.Errorf("%d shells created, want a fresh one for the second call", st.ShellsCreated)
	}
	if h := health(e, e.winrm.Addr()); !h.OK || !h.CoolDownUntil.IsZero() {
		t.Errorf("health %+v", h)
	}
}

func TestConnectionResetMidReceive(t *testing.T) {
	o := generated(400)
	e := newEnv(t, o, func(c *envConfig) { c.client.EnvelopeSize = 16384 })
	e.winrm.SetFault(simwinrm.OpReceive, simwinrm.Fault{Reset: true, After: 3, Times: 1})
	_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrConnection) || errors.Is(err, exchange.ErrUnreachable) || !strings.Contains(err.Error(), "read output of inventory/") {
		t.Fatalf("err = %v, want the cut-off read", err)
	}
	if n := e.shellsOpen(); n != 0 {
		t.Errorf("%d shells left open after the reset", n)
	}
	if h := health(e, e.winrm.Addr()); h.OK || !h.CoolDownUntil.IsZero() {
		t.Errorf("health %+v: the server answered, so no cool-down, but the call failed", h)
	}
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
}

func TestInjectedLatency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, generated(3))
	e.winrm.SetFault(simwinrm.OpCreate, simwinrm.Fault{Latency: 300 * time.Millisecond})
	start := time.Now()
	if _, err := e.client.Inventory(context.Background(), engine.InventoryQuery{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("took %v, less than the latency", took)
	}
}
