package engine

import (
	"context"
	"errors"
	"time"
)

// Serve runs the schedule until ctx ends: a full sync at start-up, then a
// full sync every FullEvery and a quick sync every QuickEvery in between.
// A run that is due while another goes on waits for it; a full sync resets
// the quick timer, since it covers everything a quick one would.
func (e *Engine) Serve(ctx context.Context) error {
	kind, trigger := RunFull, TriggerStartup
	for {
		now := e.now()
		e.mu.Lock()
		if kind == RunFull && e.opt.FullEvery > 0 {
			e.nextFull = now.Add(e.opt.FullEvery)
		}
		if e.opt.QuickEvery > 0 {
			e.nextQ = now.Add(e.opt.QuickEvery)
		}
		e.mu.Unlock()
		_, err := e.Sync(ctx, SyncRequest{Kind: kind, Trigger: trigger, Actor: "easgate"})
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrClosed):
			return nil
		case err != nil:
			e.log.Error("scheduled sync failed", "err", err)
		}
		e.mu.Lock()
		nextFull, nextQ := e.nextFull, e.nextQ
		e.mu.Unlock()
		kind, trigger = RunFull, TriggerSchedule
		due := nextFull
		if e.opt.FullEvery <= 0 || (e.opt.QuickEvery > 0 && nextQ.Before(nextFull)) {
			kind, due = RunQuick, nextQ
		}
		if e.opt.FullEvery <= 0 && e.opt.QuickEvery <= 0 {
			<-ctx.Done()
			return nil
		}
		t := time.NewTimer(max(due.Sub(e.now()), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
