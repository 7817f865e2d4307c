package intune

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
)

func TestFailingPageMakesTheInventoryIncomplete(t *testing.T) {
	tests := []struct {
		name   string
		fault  graph.Fault
		pages  int // pages read before the failing one
		reason string
	}{
		{name: "500 on page 3", fault: graph.Fault{Page: 3, Status: http.StatusInternalServerError}, pages: 2, reason: "graph answered 500"},
		{name: "429 on page 4 beyond the retries", fault: graph.Fault{Page: 4, Status: http.StatusTooManyRequests, RetryAfter: "0"}, pages: 3, reason: "graph answered 429"},
		{name: "403 on page 2", fault: graph.Fault{Page: 2, Status: http.StatusForbidden}, pages: 1, reason: "graph answered 403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: 150, config: func(c *Config) { c.PageSize = 25; c.MaxRetries = 2 }})
			tt.fault.Path = graph.PathManagedDevices
			e.sim.AddFault(tt.fault)
			inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
			if err != nil {
				t.Fatalf("err = %v: a later page failing must not fail the read", err)
			}
			if inv.Complete() || len(inv.Problems) != 1 {
				t.Fatalf("problems %q: want exactly the failed page", inv.Problems)
			}
			p := inv.Problems[0]
			if !strings.Contains(p, "page "+strconv.Itoa(tt.pages+1)) || !strings.Contains(p, tt.reason) {
				t.Fatalf("problem %q does not name page %d and %q", p, tt.pages+1, tt.reason)
			}
			// The devices of the pages before it are all there, exactly.
			checkSame(t, inv.Devices, e.managed()[:tt.pages*25])

			// And the engine, given this inventory, plans no block.
			w := worldFor(e, inv)
			out := engine.BuildPlan(engine.PlanInput{Now: simNow, Kind: engine.RunFull, Policy: engine.DefaultPolicy(), World: w})
			for _, c := range out.Plan.Changes {
				if c.List == engine.ListBlocked && c.Op == engine.OpAdd {
					t.Fatalf("the engine planned a block from an incomplete inventory: %+v", c)
				}
			}
			// The same world taken as complete would block devices: the
			// check above means something.
			w.IntuneComplete, w.Problems = true, nil
			blocks := 0
			for _, c := range engine.BuildPlan(engine.PlanInput{Now: simNow, Kind: engine.RunFull, Policy: engine.DefaultPolicy(), World: w}).Plan.Changes {
				if c.List == engine.ListBlocked && c.Op == engine.OpAdd {
					blocks++
				}
			}
			if blocks == 0 {
				t.Fatal("no blocks even from a complete inventory: the plan check means nothing")
			}
		})
	}
}

// worldFor builds the engine's world from the simulated Exchange side of
// the org and an Intune inventory, as observe would.
func worldFor(e *env, inv *engine.MDMInventory) *engine.World {
	w := &engine.World{
		Org:              engine.OrgSettings{DefaultAccessLevel: "Allow"},
		Mailboxes:        map[string]engine.Mailbox{},
		EAS:              map[engine.DeviceKey]engine.EASDevice{},
		MDM:              map[string]*engine.MDMDevice{},
		ExchangeComplete: true,
		IntuneComplete:   inv.Complete(),
		Problems:         inv.Problems,
	}
	e.org.Mu.RLock()
	defer e.org.Mu.RUnlock()
	for _, u := range e.org.Users {
		w.Mailboxes[strings.ToLower(u.UPN)] = engine.Mailbox{UPN: u.UPN, PrimarySMTP: u.PrimarySMTP}
		for _, p := range u.Partnerships {
			d := engine.EASDevice{Mailbox: u.UPN, PrimarySMTP: u.PrimarySMTP, DeviceID: p.DeviceID, DeviceType: p.DeviceType,
				DeviceModel: p.DeviceModel, ClientType: p.ClientType, AccessState: engine.StateAllowed, FirstSync: p.FirstSync, LastSync: p.LastSync}
			w.EAS[d.Key()] = d
		}
	}
	for i := range inv.Devices {
		w.MDM[inv.Devices[i].ID] = &inv.Devices[i]
	}
	return w
}

func TestFirstPageFailingIsAnError(t *testing.T) {
	e := newEnv(t, envOptions{users: 40, config: func(c *Config) { c.PageSize = 10; c.MaxRetries = 1 }})
	e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 1, Status: http.StatusServiceUnavailable, RetryAfter: "0"})
	inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	if !errors.Is(err, ErrUnavailable) || inv != nil {
		t.Fatalf("inventory %v, err = %v: want no inventory and ErrUnavailable", inv, err)
	}
}

func TestQuickReadWithAFailingPageIsIncomplete(t *testing.T) {
	since := simNow.Add(-24 * time.Hour)
	e := newEnv(t, envOptions{users: 200, config: func(c *Config) { c.PageSize = 10; c.MaxRetries = 1 }})
	e.org.Mu.Lock()
	for _, d := range e.org.Managed {
		d.LastSyncDateTime = since.Add(time.Hour)
	}
	e.org.Mu.Unlock()
	// Page 2 of each filtered read fails.
	e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 2, Status: http.StatusBadGateway})
	inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Complete() || !inv.Quick {
		t.Fatalf("quick=%v problems=%q: want an incomplete quick inventory", inv.Quick, inv.Problems)
	}
	if !strings.Contains(strings.Join(inv.Problems, "\n"), "lastSyncDateTime gt") {
		t.Fatalf("problems %q do not name the filtered read", inv.Problems)
	}
	if len(inv.Devices) != 10 {
		t.Fatalf("%d devices, want the 10 of page 1", len(inv.Devices))
	}
}

func TestTruncatedPageIsReadAgain(t *testing.T) {
	e := newEnv(t, envOptions{users: 80, config: func(c *Config) { c.PageSize = 20 }})
	// A page that breaks off mid-body, once: the client reads it again.
	e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 2, Status: graph.StatusTruncated, Times: 1})
	inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Complete() {
		t.Fatalf("problems: %q", inv.Problems)
	}
	checkSame(t, inv.Devices, e.managed())
	if e.sim.Stats().Faults != 1 || !strings.Contains(e.logs.String(), "graph response broke off") {
		t.Fatal("the page was not broken off and read again")
	}
}

func TestBadRecordIsSkippedAndReported(t *testing.T) {
	e := newEnv(t, envOptions{users: 40, config: func(c *Config) { c.PageSize = 15 }})
	e.org.Mu.Lock()
	bad := e.org.Managed[17]
	bad.ID = "" // Graph sends a record without an id
	e.org.Mu.Unlock()
	inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Complete() || len(inv.Problems) != 1 || !strings.Contains(inv.Problems[0], "page 2") {
		t.Fatalf("problems %q: want the one bad record on page 2", inv.Problems)
	}
	var want []*org.ManagedDevice
	for _, d := range e.managed() {
		if d != bad {
			want = append(want, d)
		}
	}
	checkSame(t, inv.Devices, want)
}
