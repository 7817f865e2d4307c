package intune

import (
	"context"
	"sync"
	"time"
)

// limiter keeps a client's requests within n per window, measured the way
// Graph counts them: any window of that length holds at most n request
// starts. Each request reserves the earliest slot the window allows and
// sleeps until then, so that waiting requests leave in order. hold pauses
// every request until a time, when Graph said Retry-After to one of them.
type limiter struct {
	n      int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	slots []time.Time // ring of the last n reservations
	next  int         // index of the oldest reservation
	until time.Time   // no request starts before this
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, now: time.Now, slots: make([]time.Time, 0, min(n, 4096))}
}

// reserve returns when the next request may start and records it.
func (l *limiter) reserve() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.now()
	if at.Before(l.until) {
		at = l.until
	}
	if len(l.slots) < l.n {
		l.slots = append(l.slots, at)
		return at
	}
	if free := l.slots[l.next].Add(l.window); at.Before(free) {
		at = free
	}
	l.slots[l.next] = at
	l.next = (l.next + 1) % l.n
	return at
}

// wait blocks until the request may start, or ctx ends.
func (l *limiter) wait(ctx context.Context) error {
	at := l.reserve()
	return sleep(ctx, at.Sub(l.now()))
}

// hold makes requests that have not reserved yet start no earlier than t.
func (l *limiter) hold(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.until) {
		l.until = t
	}
}
