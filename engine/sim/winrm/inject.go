package winrm

import (
	"context"
	"net/http"
	"time"
)

// Op names a WS-Management operation of the remote shell, for fault
// injection.
type Op string

// The operations a Fault can target; OpAny targets all of them.
const (
	OpCreate  Op = "Create"
	OpCommand Op = "Command"
	OpSend    Op = "Send"
	OpReceive Op = "Receive"
	OpSignal  Op = "Signal"
	OpDelete  Op = "Delete"
	OpAny     Op = "*"
)

// Fault is a failure the server injects into requests of one operation,
// after authenticating and reading them. The kinds combine in this order:
// Latency first; then Unauthorized, Status or Reset.
type Fault struct {
	// Latency delays the answer, as a busy server or a slow link would.
	Latency time.Duration
	// Unauthorized answers 401, as for a wrong password or an expired
	// account.
	Unauthorized bool
	// Status answers with this HTTP status and a WS-Management
	// InternalError fault (500 is what Windows sends for a failing
	// provider). Like Reset, a Status set while a Receive waits hits that
	// Receive, and the output it took is lost.
	Status int
	// Reset drops the connection without an answer. A Receive does its
	// work first: the output it took from the command is lost with the
	// connection, as when a connection breaks mid-Receive.
	Reset bool
	// After lets this many matching requests through before the fault
	// starts; Times is how many it hits then (0: every one until cleared).
	After, Times int
}

// injection is a Fault and how often it has matched.
type injection struct {
	Fault
	seen, hit int
}

// SetFault injects f into every later request of op (replacing a fault set
// for op before). A zero Fault clears it.
func (s *Server) SetFault(op Op, f Fault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, op)
		return
	}
	s.faults[op] = &injection{Fault: f}
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = map[Op]*injection{}
}

// faultFor returns the fault that hits this request of op, if any, and
// whether any fault was set for op (hitting it or not).
func (s *Server) faultFor(op Op) (f *Fault, set bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.take(op, false)
}

// lateFault returns a Reset or Status fault set for op while a request of
// op that met no fault on arrival waited. A Receive long-polls: a
// connection that breaks, or a provider that fails, while it waits fails
// that Receive, not only later ones. Latency and Unauthorized are decided
// on arrival, as a server authenticates and queues a request then.
func (s *Server) lateFault(op Op) *Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f, _ := s.take(op, true)
	return f
}

// take counts a request of op against the faults set for it and returns
// the one that hits it; late limits it to the faults that can end a
// request already waiting (Reset and Status). s.faultMu is held.
func (s *Server) take(op Op, late bool) (f *Fault, set bool) {
	for _, key := range []Op{op, OpAny} {
		in := s.faults[key]
		if in == nil || (late && !in.Reset && in.Status == 0) {
			continue
		}
		set = true
		in.seen++
		if in.seen <= in.After || (in.Times > 0 && in.hit >= in.Times) {
			continue
		}
		in.hit++
		s.injected.Add(1)
		hit := in.Fault
		return &hit, true
	}
	return nil, set
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// faultInternal is the fault a failing WS-Management provider answers with.
func faultInternal(status int) *fault {
	return &fault{status: status, code: "s:Receiver", subcode: "w:InternalError", wsman: codeInternalError,
		message: "The WS-Management service cannot process the request. The service encountered an internal error. "}
}

// applyFault performs the part of f that ends the request; it reports
// whether it answered (or dropped) the request.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, relatesTo string, f *Fault) bool {
	switch {
	case f.Unauthorized:
		s.refuse(w, r, "")
		return true
	case f.Status != 0:
		s.writeFault(w, relatesTo, faultInternal(f.Status))
		return true
	case f.Reset:
		dropConnection(w)
		return true
	}
	return false
}
