package intune

import (
	"sync"
	"time"
)

// call is one ObserveCall.
type call struct {
	system, op string
	d          time.Duration
	err        error
}

// callRecorder is an engine.CallObserver that keeps every call.
type callRecorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *callRecorder) ObserveCall(system, op string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{system, op, d, err})
}

// count returns how many calls had the op, and how many of them failed.
func (r *callRecorder) count(op string) (all, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.op == op {
			all++
			if c.err != nil {
				failed++
			}
		}
	}
	return all, failed
}

// systems returns the distinct system names reported.
func (r *callRecorder) systems() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int{}
	for _, c := range r.calls {
		m[c.system]++
	}
	return m
}
