package exchange_test

import (
	"context"
	"testing"
	"time"

	"easgate/engine"
	simexchange "easgate/engine/sim/exchange"
)

// TestStreamedOutputIsReceivedInFewRoundTrips checks that a script writing
// a line every few milliseconds (a result per Set-CASMailbox) is read with
// a Receive per receivePacing, not a Receive per line.
func TestStreamedOutputIsReceivedInFewRoundTrips(t *testing.T) {
	o := generated(300)
	// Each Set-CASMailbox takes 5 ms: 300 edits write for 1.5 s.
	cost := &simexchange.Cost{PerEdit: 5 * time.Millisecond, Scale: 1}
	e := newEnv(t, o, func(c *envConfig) { c.exchange.Cost = cost })
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []engine.Change
	seen := map[string]bool{}
	for _, d := range inv.Devices {
		if !seen[d.Mailbox] {
			seen[d.Mailbox] = true
			changes = append(changes, engine.Change{Mailbox: d.Mailbox, DeviceID: d.DeviceID, List: engine.ListBlocked, Op: engine.OpAdd})
		}
	}
	before := e.winrm.Stats().Receives
	results, err := e.client.ApplyChanges(context.Background(), changes)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK {
			t.Fatalf("change failed: %+v", r)
		}
	}
	receives := e.winrm.Stats().Receives - before
	// Unpaced: about one Receive per result line (300). Paced: about one
	// per 100 ms of the 1.5 s, plus the few before pacing starts.
	if receives > int64(len(changes))/4 {
		t.Errorf("%d Receives for %d result lines, want at most %d", receives, len(changes), len(changes)/4)
	}
	t.Logf("%d Receives for %d result lines", receives, len(changes))
}
