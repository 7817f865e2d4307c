package exchange_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/exchange"
)

// TestFullInventorySpreadsOverProcesses checks that a full inventory too
// large for one process spreads over up to Parallel of them, reads every
// object exactly once, and returns what one process would.
func TestFullInventorySpreadsOverProcesses(t *testing.T) {
	tests := []struct {
		name          string
		users         int
		parallel      int
		minP, maxP    int64
		skipStatistic bool
	}{
		{name: "small organisation stays in one process", users: 150, parallel: 4, minP: 1, maxP: 1},
		{name: "large organisation, four processes", users: 2000, parallel: 4, minP: 2, maxP: 4},
		{name: "large organisation, parallel 1", users: 2000, parallel: 1, minP: 1, maxP: 1},
		{name: "large organisation without statistics", users: 2000, parallel: 3, minP: 2, maxP: 3, skipStatistic: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := generated(tt.users)
			e := newEnv(t, o, func(c *envConfig) {
				c.client.Parallel = tt.parallel
				c.client.SkipStatistics = tt.skipStatistic
			})
			inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.skipStatistic {
				// Without statistics the devices lack their last sync
				// time, which checkInventory compares.
				if _, devs := expectedInventory(o, time.Time{}); !inv.Complete() || len(inv.Devices) != len(devs) || len(inv.Mailboxes) != tt.users {
					t.Errorf("complete %t, %d devices and %d mailboxes, want %d and %d", inv.Complete(), len(inv.Devices), len(inv.Mailboxes), len(devs), tt.users)
				}
			} else {
				checkInventory(t, inv, o, time.Time{})
			}
			c := e.host.Counters()
			if c.Starts < tt.minP || c.Starts > tt.maxP {
				t.Errorf("%d processes, want %d to %d", c.Starts, tt.minP, tt.maxP)
			}
			o.Mu.RLock()
			counts := o.Count()
			o.Mu.RUnlock()
			w := c.Work
			wantStats := int64(counts.Partnerships)
			if tt.skipStatistic {
				wantStats = 0
			}
			if w.Devices != int64(counts.Partnerships) || w.Mailboxes != int64(tt.users) || w.UPNLookups != int64(tt.users) || w.Statistics != wantStats {
				t.Errorf("Exchange did %+v, want each of %d devices and %d mailboxes read once (statistics %d)", w, counts.Partnerships, tt.users, wantStats)
			}
			withStats := 0
			for _, d := range inv.Devices {
				if !d.LastSync.IsZero() {
					withStats++
				}
			}
			if tt.skipStatistic != (withStats == 0) {
				t.Errorf("%d of %d devices have a last sync time", withStats, len(inv.Devices))
			}
		})
	}
}

// TestFullInventoryFailsWhenTheStreamFails checks that a failure of the
// process streaming the devices fails the inventory, and leaves no
// process or shell behind.
func TestFullInventoryFailsWhenTheStreamFails(t *testing.T) {
	e := newEnv(t, generated(2000), func(c *envConfig) { c.exchange.Denied = []string{"Get-MobileDevice"} })
	_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if !errors.Is(err, exchange.ErrScript) {
		t.Fatalf("err = %v, want the script's failure", err)
	}
	if c := e.host.Counters(); c.Starts != 1 {
		t.Errorf("%d processes started, want the failing one only", c.Starts)
	}
}
