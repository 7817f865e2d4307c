package exchange_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/exchange"
	simexchange "easgate/engine/sim/exchange"
	"easgate/engine/sim/org"
)

var costScale = flag.Float64("cost-scale", 0.02, "scale of the simulator's cost model in the benchmarks (1 = real time)")

// applyInBatches applies changes as the engine does: batches of batch
// changes, at most parallel calls at once.
func applyInBatches(t testing.TB, e *env, changes []engine.Change, batch, parallel int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	errs := make(chan error, len(changes)/batch+1)
	for i := 0; i < len(changes); i += batch {
		part := changes[i:min(i+batch, len(changes))]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results, err := e.client.ApplyChanges(context.Background(), part)
			if err == nil {
				for _, r := range results {
					if !r.OK {
						err = fmt.Errorf("change failed: %+v", r)
						break
					}
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// generatedWith returns a generated organisation of users, topped up
// with iPhone partnerships to hold devices partnerships at least.
func generatedWith(users, devices int) *org.Org {
	o := generated(users)
	o.Mu.Lock()
	defer o.Mu.Unlock()
	for i := 0; o.Count().Partnerships < devices; i++ {
		u := o.Users[i%len(o.Users)]
		_ = o.AddPartnership(u.UPN, &org.Partnership{DeviceID: fmt.Sprintf("ApplTOPUP%06d", i), DeviceType: "iPhone", DeviceModel: "iPhone17C3",
			DeviceOS: "iOS 18.3.2 22D82", UserAgent: "Apple-iPhone17C3/2204.82", FirstSync: now.Add(-time.Hour), LastSync: now, WhenChanged: now})
	}
	return o
}

// blockChanges returns n changes that block inventory devices.
func blockChanges(inv *engine.ExchangeInventory, n int) []engine.Change {
	var changes []engine.Change
	for _, d := range inv.Devices {
		if len(changes) == n {
			break
		}
		changes = append(changes, engine.Change{Mailbox: d.Mailbox, DeviceID: d.DeviceID, List: engine.ListBlocked, Op: engine.OpAdd})
	}
	return changes
}

// TestProcessStartsDoNotGrowWithTheOrganisation counts powershell.exe
// starts in the simulator. A full inventory spreads its per-object work
// over at most exchange.parallel processes, whatever the organisation's
// size (one more process is started only when a thousand objects wait for
// one): at 10,000 mailboxes that is 4 with the default, 3 with parallel: 3,
// 1 with parallel: 1. Apply starts
// one process per batch, plus one for a retry.
func TestProcessStartsDoNotGrowWithTheOrganisation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                           string
		users, devices, changes, batch int
		parallel                       int // 0: the default
		wantInventory                  int // starts, at most
		skipShort                      bool
	}{
		{name: "600 mailboxes, 900 devices, 600 changes in batches of 100", users: 600, devices: 900, changes: 600, batch: 100, wantInventory: exchange.DefaultParallel},
		{name: "10,000 mailboxes, 15,000 devices, 5,000 changes in batches of 500", users: 10000, devices: 15000, changes: 5000, batch: 500,
			wantInventory: exchange.DefaultParallel, skipShort: true},
		{name: "10,000 mailboxes, 15,000 devices, parallel 3", users: 10000, devices: 15000, changes: 5000, batch: 500,
			parallel: 3, wantInventory: 3, skipShort: true},
		{name: "10,000 mailboxes, 15,000 devices, parallel 1", users: 10000, devices: 15000, changes: 5000, batch: 500,
			parallel: 1, wantInventory: 1, skipShort: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skipShort && testing.Short() {
				t.Skip("large organisation")
			}
			o := generatedWith(tt.users, tt.devices)
			e := newEnv(t, o, func(c *envConfig) { c.client.Parallel = tt.parallel })
			start := time.Now()
			inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			checkInventory(t, inv, o, time.Time{})
			if len(inv.Mailboxes) != tt.users || len(inv.Devices) != tt.devices {
				t.Errorf("%d mailboxes, %d devices: want %d and %d", len(inv.Mailboxes), len(inv.Devices), tt.users, tt.devices)
			}
			if n := e.host.Starts(); n < 1 || n > tt.wantInventory {
				t.Errorf("inventory of %d mailboxes, %d devices started powershell %d times, want 1 to %d", len(inv.Mailboxes), len(inv.Devices), n, tt.wantInventory)
			}
			if st := e.winrm.Stats(); st.Oversize != 0 {
				t.Errorf("%d answers over MaxEnvelopeSize", st.Oversize)
			}
			t.Logf("inventory: %d mailboxes, %d devices in %v", len(inv.Mailboxes), len(inv.Devices), took.Round(time.Millisecond))

			before := e.host.Starts()
			changes := blockChanges(inv, tt.changes)
			start = time.Now()
			applyInBatches(t, e, changes, tt.batch, 4)
			limit := (len(changes)+tt.batch-1)/tt.batch + 1
			if n := e.host.Starts() - before; n > limit {
				t.Errorf("applying %d changes started powershell %d times, want at most %d", len(changes), n, limit)
			}
			t.Logf("apply: %d changes in %v", len(changes), time.Since(start).Round(time.Millisecond))
			o.Mu.RLock()
			blocked := 0
			for _, u := range o.Users {
				blocked += len(u.Blocked)
			}
			o.Mu.RUnlock()
			if blocked < len(changes) {
				t.Errorf("%d IDs blocked in the org after %d block changes", blocked, len(changes))
			}
		})
	}
}

// BenchmarkTenThousand times a full inventory of 10,000 mailboxes (15,000
// devices, with last sync times) and applying 5,000 changes in
// batches of 500, four at once, as the engine does: without the
// simulator's cost model (the client, the wire and the simulator alone),
// and with it, scaled by -cost-scale. model-s/op is the modelled time on a
// real server.
//
//	go test -run '^$' -bench TenThousand -benchtime 1x ./engine/exchange
func BenchmarkTenThousand(b *testing.B) {
	for _, withCost := range []bool{false, true} {
		name := "cost=off"
		if withCost {
			name = fmt.Sprintf("cost=%g", *costScale)
		}
		opts := func(c *envConfig) {
			if withCost {
				c.exchange.Cost = simexchange.DefaultCost(*costScale)
			}
		}
		b.Run("inventory/"+name, func(b *testing.B) {
			o := generatedWith(10000, 15000)
			e := newEnv(b, o, opts)
			var ms runtime.MemStats
			b.ResetTimer()
			for range b.N {
				busy := e.host.Counters().Busy
				start := time.Now()
				inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
				if err != nil || !inv.Complete() {
					b.Fatal(err, inv.Problems)
				}
				report(b, time.Since(start), e.host.Counters().Busy-busy, withCost)
				b.ReportMetric(float64(len(inv.Devices)), "devices")
			}
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(e.host.Starts())/float64(b.N), "starts/op")
		})
		b.Run("apply-5000/"+name, func(b *testing.B) {
			o := generatedWith(10000, 15000)
			e := newEnv(b, o, opts)
			inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
			if err != nil {
				b.Fatal(err)
			}
			add := blockChanges(inv, 5000)
			remove := make([]engine.Change, len(add))
			for i, c := range add {
				c.Op = engine.OpRemove
				remove[i] = c
			}
			starts := e.host.Starts()
			b.ResetTimer()
			for i := range b.N {
				changes := add
				if i%2 == 1 {
					changes = remove
				}
				busy := e.host.Counters().Busy
				start := time.Now()
				applyInBatches(b, e, changes, 500, 4)
				report(b, time.Since(start), e.host.Counters().Busy-busy, withCost)
			}
			b.ReportMetric(float64(e.host.Starts()-starts)/float64(b.N), "starts/op")
		})
	}
}

// report adds the modelled real-server time of one operation: the wall
// time at full scale (the client's and the wire's own time, a few per cent
// of it without the cost model, is scaled too, so this errs long), and
// the time the model slept, summed over the processes that ran at once.
func report(b *testing.B, wall, busy time.Duration, withCost bool) {
	if !withCost {
		return
	}
	b.ReportMetric(wall.Seconds() / *costScale, "model-s/op")
	b.ReportMetric(busy.Seconds(), "slept-s/op")
}
