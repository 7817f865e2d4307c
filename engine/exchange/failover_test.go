package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/exchange"
	simwinrm "easgate/engine/sim/winrm"
)

// recorder is a CallObserver that keeps what it was told.
type recorder struct {
	mu    sync.Mutex
	calls []string // "system op ok|error"
}

func (r *recorder) ObserveCall(system, op string, _ time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	r.calls = append(r.calls, system+" "+op+" "+outcome)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func health(e *env, name string) engine.Health {
	for _, h := range e.client.Health() {
		if h.Name == name {
			return h
		}
	}
	return engine.Health{}
}

func TestFailoverToTheSecondServerAndBackAfterTheCoolDown(t *testing.T) {
	t.Parallel()
	const coolDown = 400 * time.Millisecond
	rec := &recorder{}
	o := generated(30)
	e := newEnv(t, o, func(c *envConfig) {
		c.servers = 2
		c.client.CoolDown, c.client.Observer = coolDown, rec
	})
	first, second := e.winrms[0].Addr(), e.winrms[1].Addr()
	if err := e.winrms[0].SetDown(true); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkInventory(t, inv, o, time.Time{})
	if inv.Server != second {
		t.Fatalf("inventory from %s, want the second server %s", inv.Server, second)
	}
	h1, h2 := health(e, first), health(e, second)
	if h1.OK || h1.InUse || !strings.Contains(h1.Error, "cannot reach the WinRM service") || !h1.CoolDownUntil.After(time.Now()) ||
		h1.CoolDownUntil.After(down.Add(coolDown+time.Second)) {
		t.Errorf("first server's health %+v: want cooling down after a refused connection", h1)
	}
	if !h2.OK || !h2.InUse || !h2.CoolDownUntil.IsZero() || h2.LastCall.IsZero() {
		t.Errorf("second server's health %+v: want in use", h2)
	}
	if got := strings.Join(rec.take(), ", "); got != "exchange connect error, exchange inventory ok" {
		t.Errorf("observed %s", got)
	}

	// Back up, but still cooling down: calls stay on the second server.
	if err := e.winrms[0].SetDown(false); err != nil {
		t.Fatal(err)
	}
	before := e.winrms[0].Stats().Requests
	if _, err := e.client.ApplyChanges(context.Background(), []engine.Change{{Mailbox: o.Users[0].UPN, DeviceID: "ApplFAILOVER01", List: engine.ListBlocked, Op: engine.OpAdd}}); err != nil {
		t.Fatal(err)
	}
	if n := e.winrms[0].Stats().Requests - before; n != 0 {
		t.Errorf("%d requests to the first server during its cool-down", n)
	}
	if e.hosts[1].Starts() != 2 {
		t.Errorf("second server started powershell %d times, want 2", e.hosts[1].Starts())
	}

	// After the cool-down, calls go back to the first server.
	time.Sleep(time.Until(down.Add(coolDown + 50*time.Millisecond)))
	inv, err = e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Server != first {
		t.Fatalf("inventory from %s after the cool-down, want the first server %s", inv.Server, first)
	}
	if h := health(e, first); !h.OK || !h.InUse || !h.CoolDownUntil.IsZero() || h.Error != "" {
		t.Errorf("first server's health %+v after coming back", h)
	}
	if h := health(e, second); h.InUse {
		t.Errorf("second server still in use: %+v", h)
	}
}

func TestEveryServerDown(t *testing.T) {
	e := newEnv(t, generated(3), func(c *envConfig) { c.servers = 2 })
	for _, s := range e.winrms {
		if err := s.SetDown(true); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	for _, s := range e.winrms {
		if !strings.Contains(err.Error(), s.Addr()) {
			t.Errorf("error %q does not name %s", err, s.Addr())
		}
	}
	// Every server cooling down: the next call tries them all again rather
	// than failing without a try.
	if err := e.winrms[1].SetDown(false); err != nil {
		t.Fatal(err)
	}
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil || inv.Server != e.winrms[1].Addr() {
		t.Fatalf("with every server cooling down and the second back: %v", err)
	}
}

func TestRefusedCredentialsDoNotFailOver(t *testing.T) {
	e := newEnv(t, generated(3), func(c *envConfig) { c.servers = 2 })
	e.winrms[0].SetFault(simwinrm.OpAny, simwinrm.Fault{Unauthorized: true})
	_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if n := e.winrms[1].Stats().Requests; n != 0 {
		t.Errorf("the second server got %d requests: the same account would be refused there too", n)
	}
	if h := health(e, e.winrms[0].Addr()); h.OK || !h.CoolDownUntil.IsZero() || !strings.Contains(h.Error, "refused the credentials") {
		t.Errorf("health %+v: want the refusal, without a cool-down", h)
	}
}

func TestEveryCommandIsObserved(t *testing.T) {
	rec := &recorder{}
	o := generated(5)
	e := newEnv(t, o, func(c *envConfig) { c.client.Observer = rec; c.exchange.Denied = []string{"Clear-MobileDevice"} })
	ctx := context.Background()
	if _, err := e.client.Inventory(ctx, engine.InventoryQuery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ApplyChanges(ctx, []engine.Change{{Mailbox: o.Users[0].UPN, DeviceID: "X1", List: engine.ListAllowed, Op: engine.OpAdd}}); err != nil {
		t.Fatal(err)
	}
	d := o.Users[0].Partnerships[0]
	_ = e.client.WipeDevice(ctx, o.Users[0].UPN, d.DeviceID, false)
	if _, err := e.client.DeviceStatistics(ctx, o.Users[0].UPN, d.DeviceID); err != nil {
		t.Fatal(err)
	}
	want := []string{"exchange inventory ok", "exchange apply ok", "exchange wipe error", "exchange stats ok"}
	if got := rec.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}
