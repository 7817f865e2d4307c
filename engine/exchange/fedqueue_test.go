package exchange

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"easgate/engine"
)

// TestFailedInventoryProcessHandsItsWorkOver checks the scheduler's
// bookkeeping when a process ends without answering its requests: their
// objects go back to the queue once, and are given up (and counted) the
// second time.
func TestFailedInventoryProcessHandsItsWorkOver(t *testing.T) {
	ctx := context.Background()
	f := &fedInventory{c: &Client{log: slog.New(slog.DiscardHandler), cfg: Config{Parallel: 4}}, ctx: ctx, stats: true,
		b: newInventoryBuilder(engine.InventoryQuery{}, slog.New(slog.DiscardHandler)), seen: map[string]bool{}}
	f.retry.mailboxes, f.retry.stats = map[string]bool{}, map[string]bool{}
	f.mu.Lock()
	first := f.newLane()
	second := f.newLane()
	f.streaming = true // the first process still streams: nothing goes to it
	f.mailboxes = []string{"CN=a", "CN=b"}
	f.statQueue = []string{"a/1", "b/1", "b/2"}
	f.send(second, f.take(fedRequestItems))
	f.mu.Unlock()
	if len(second.inflight) != 1 || f.queued() != 0 {
		t.Fatalf("in flight %d, queued %d: want one request holding everything", len(second.inflight), f.queued())
	}

	f.ended(second, nil, errors.New("connection reset"))
	f.mu.Lock()
	if !slices.Equal(f.mailboxes, []string{"CN=a", "CN=b"}) || !slices.Equal(f.statQueue, []string{"a/1", "b/1", "b/2"}) {
		t.Errorf("queues after the failure: %v %v, want every object back", f.mailboxes, f.statQueue)
	}
	if !second.closed || !second.dead || len(second.inflight) != 0 {
		t.Errorf("failed process: closed %t dead %t in flight %d", second.closed, second.dead, len(second.inflight))
	}
	// A third process takes the work and fails too: now it is lost.
	third := f.newLane()
	f.send(third, f.take(fedRequestItems))
	f.mu.Unlock()
	f.ended(third, nil, errors.New("connection reset"))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queued() != 0 || f.lost.mailboxes != 2 || f.lost.stats != 3 {
		t.Errorf("queued %d, lost %+v: want nothing queued, 2 mailboxes and 3 statistics lost", f.queued(), f.lost)
	}
	if first.closed {
		t.Error("the streaming process's stdin was closed while it streams")
	}
}
