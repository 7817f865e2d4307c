package exchange_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"easgate/engine"
)

// TestInventoryOfTenThousandUsers measures a full inventory of a generated
// organisation of 10,000 users in one PowerShell process, through the real
// client and both simulators.
func TestInventoryOfTenThousandUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	o := generated(10000)
	e := newEnv(t, o)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	checkInventory(t, inv, o, time.Time{})
	w, st := e.client.Wire(), e.winrm.Stats()
	t.Logf("10,000 users: %d mailboxes, %d devices in %v", len(inv.Mailboxes), len(inv.Devices), elapsed.Round(time.Millisecond))
	t.Logf("wire: %d requests, %d bytes sent, %d bytes received; largest answer %d bytes; %d receives",
		w.Requests, w.BytesSent, w.BytesReceived, st.LargestResponse, st.Receives)
	t.Logf("allocated %d MB in %d allocations (client, servers and simulated Exchange together)",
		(after.TotalAlloc-before.TotalAlloc)>>20, after.Mallocs-before.Mallocs)
	if st.Oversize != 0 {
		t.Errorf("%d answers over MaxEnvelopeSize", st.Oversize)
	}
	if e.host.Starts() != 1 {
		t.Errorf("%d powershell starts, want 1", e.host.Starts())
	}
	if elapsed > 30*time.Second {
		t.Errorf("full inventory took %v", elapsed)
	}

	// One apply call of 1,000 changes, and a quick inventory after it.
	var changes []engine.Change
	for _, d := range inv.Devices[:1000] {
		changes = append(changes, engine.Change{Mailbox: d.Mailbox, DeviceID: d.DeviceID, List: engine.ListBlocked, Op: engine.OpAdd})
	}
	w0 := e.client.Wire()
	start = time.Now()
	results, err := e.client.ApplyChanges(context.Background(), changes)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.OK {
			t.Fatalf("change failed: %+v", r)
		}
	}
	w1 := e.client.Wire()
	t.Logf("apply of 1,000 changes: %v, %d bytes sent, %d received", time.Since(start).Round(time.Millisecond),
		w1.BytesSent-w0.BytesSent, w1.BytesReceived-w0.BytesReceived)
	start = time.Now()
	quick, err := e.client.Inventory(context.Background(), engine.InventoryQuery{Since: now.Add(-7 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	w2 := e.client.Wire()
	t.Logf("quick inventory (7 days): %d devices in %v, %d bytes received", len(quick.Devices), time.Since(start).Round(time.Millisecond), w2.BytesReceived-w1.BytesReceived)
}
