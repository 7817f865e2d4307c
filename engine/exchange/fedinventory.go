package exchange

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"easgate/engine"
)

// A full inventory is mostly work per object: the CAS mailbox and UPN of
// each mailbox holding partnerships, and the statistics of each
// partnership, each a cmdlet call that takes Exchange tens of
// milliseconds. One process streams the devices (inventory/2 with
// "devices"), and the work per object goes out, as the devices arrive,
// in request lines on stdin to that process once its stream is done and
// to up to Parallel-1 more processes started when enough work waits: the
// work spreads over the sessions Exchange allows, each paying its start
// once. A small organisation stays in one process.
const (
	// fedRequestItems is the most objects one request line names.
	fedRequestItems = 200
	// fedWindow is how many requests a process holds at once, so that it
	// never waits for the next.
	fedWindow = 2
	// fedHelperItems is how many waiting objects warrant another process.
	fedHelperItems = 1000
)

// fedPayload is inventory/2's first stdin line.
type fedPayload struct {
	sessionPayload
	Devices bool `json:"devices"` // stream the settings, rules and devices first
}

// fedRequest is one line of work: mailboxes by distinguished name, and
// partnerships whose statistics to read, by identity.
type fedRequest struct {
	ID        string   `json:"id"`
	Mailboxes []string `json:"mailboxes,omitempty"`
	Stats     []string `json:"stats,omitempty"`
	retry     bool     // its objects were requeued once already
}

// fedLane is one inventory/2 process.
type fedLane struct {
	n        int // 0 streams the devices
	feed     chan []byte
	inflight map[string]*fedRequest
	closed   bool // feed closed: no more work
	dead     bool // the process ended
	ended    bool // its end line arrived
	parser   lineParser
}

// fedInventory runs one full inventory over several processes. Its mutex
// guards everything; lines arrive from each process's reader.
type fedInventory struct {
	c     *Client
	ctx   context.Context
	stats bool

	mu        sync.Mutex
	b         *inventoryBuilder
	lanes     []*fedLane
	streaming bool // process 0 has not finished its device stream
	mailboxes []string
	statQueue []string
	seen      map[string]bool // mailbox DNs queued, lower-cased
	retry     struct{ mailboxes, stats map[string]bool }
	nextID    int
	stderr    stderrRecords
	lost      struct{ mailboxes, stats int }
	wg        sync.WaitGroup
}

// fullInventory reads Exchange in full with inventory/2.
func (c *Client) fullInventory(ctx context.Context, q engine.InventoryQuery) (*engine.ExchangeInventory, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &fedInventory{c: c, ctx: ctx, stats: !c.cfg.SkipStatistics, b: newInventoryBuilder(q, c.log), streaming: true,
		seen: map[string]bool{}}
	f.b.stats = f.stats
	f.retry.mailboxes, f.retry.stats = map[string]bool{}, map[string]bool{}
	start := time.Now()
	f.mu.Lock()
	first := f.newLane()
	f.mu.Unlock()
	res, err := c.runFed(ctx, nil, inventory2Script, func(sp sessionPayload) any { return fedPayload{sessionPayload: sp, Devices: true} },
		first.feed, f.onLine(first))
	if err == nil {
		err = scriptError(inventory2Script, res)
	}
	if err != nil {
		cancel()
		f.mu.Lock()
		f.streaming = false
		f.mu.Unlock()
		f.wg.Wait()
		return nil, fmt.Errorf("exchange inventory: %w", err)
	}
	f.ended(first, res, nil)
	f.wg.Wait()

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lost.mailboxes > 0 {
		f.b.problem("%d mailboxes could not be read: the processes reading them failed twice", f.lost.mailboxes)
	}
	if f.lost.stats > 0 {
		f.c.log.Warn("exchange statistics not read", "devices", f.lost.stats)
	}
	inv := f.b.finish(&f.stderr)
	inv.Server = res.server
	c.log.Info("exchange inventory read", logServer, res.server, "quick", false, "devices", len(inv.Devices),
		"mailboxes", len(inv.Mailboxes), "problems", len(inv.Problems), "processes", len(f.lanes), "duration", time.Since(start))
	return inv, nil
}

// newLane adds a process's bookkeeping. f.mu must be held.
func (f *fedInventory) newLane() *fedLane {
	l := &fedLane{n: len(f.lanes), feed: make(chan []byte, fedWindow+1), inflight: map[string]*fedRequest{}}
	f.lanes = append(f.lanes, l)
	return l
}

// spawn starts another process to take requests. f.mu must be held.
func (f *fedInventory) spawn() {
	l := f.newLane()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		res, err := f.c.runFed(f.ctx, nil, inventory2Script, func(sp sessionPayload) any { return fedPayload{sessionPayload: sp} },
			l.feed, f.onLine(l))
		if err == nil {
			err = scriptError(inventory2Script, res)
		}
		if err == nil && !l.ended {
			err = fmt.Errorf("%s ended before its end line", scriptInventory2)
		}
		f.ended(l, res, err)
	}()
}

// ended takes a finished process: its stderr, and the requests it never
// answered, which go back to the queue once.
func (f *fedInventory) ended(l *fedLane, res *runResult, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l.dead = true
	if l.n == 0 {
		f.streaming = false
	}
	if res != nil && res.stderr != nil {
		f.stderr.Errors = append(f.stderr.Errors, res.stderr.Errors...)
		f.stderr.Full = append(f.stderr.Full, res.stderr.Full...)
		f.stderr.Warnings = append(f.stderr.Warnings, res.stderr.Warnings...)
		if res.stderr.Plain != "" {
			f.stderr.Plain = strings.TrimSpace(f.stderr.Plain + "\n" + res.stderr.Plain)
		}
	}
	if err != nil && f.ctx.Err() == nil {
		f.c.log.Warn("exchange inventory process failed; its work goes to the others", "process", l.n, logError, err,
			"requests", len(l.inflight))
	}
	for _, r := range l.inflight {
		f.requeue(r)
	}
	clear(l.inflight)
	if !l.closed {
		l.closed = true
		close(l.feed)
	}
	f.dispatch()
}

// requeue puts an unanswered request's objects back, once.
func (f *fedInventory) requeue(r *fedRequest) {
	for _, dn := range r.Mailboxes {
		if f.retry.mailboxes[dn] {
			f.lost.mailboxes++
			continue
		}
		f.retry.mailboxes[dn] = true
		f.mailboxes = append(f.mailboxes, dn)
	}
	for _, id := range r.Stats {
		if f.retry.stats[id] {
			f.lost.stats++
			continue
		}
		f.retry.stats[id] = true
		f.statQueue = append(f.statQueue, id)
	}
}

// onLine is a process's stdout handler.
func (f *fedInventory) onLine(l *fedLane) lineFunc {
	return func(n int, line []byte) {
		f.mu.Lock()
		defer f.mu.Unlock()
		err := l.parser.parse(line, func(r *record) { f.record(l, n, r) })
		if err != nil {
			f.b.malformed++
			if f.b.malformed <= maxLineProblems {
				where := ""
				if l.n > 0 {
					where = fmt.Sprintf(" (inventory process %d)", l.n+1)
				}
				f.b.problem("stdout line %d%s is malformed and was skipped: %v", n, where, err)
			}
		}
		f.dispatch()
	}
}

// record takes one record of a process's line n. f.mu must be held.
func (f *fedInventory) record(l *fedLane, n int, r *record) {
	switch r.T {
	case "begin":
		if string(r.Script) != scriptInventory2 {
			f.b.problem("stdout line %d: output of script %q, want %s", n, r.Script, scriptInventory2)
		}
		if l.n == 0 {
			f.b.begun = true
		}
	case "devices":
		if l.n == 0 {
			f.streaming = false
		}
	case "done":
		delete(l.inflight, string(r.ID))
	case "end":
		l.ended = true
		if l.n == 0 {
			end := *r
			f.b.end = &end
		}
	case "device":
		f.b.record(n, r)
		if dn := string(r.MailboxDN); dn != "" && !f.seen[strings.ToLower(dn)] {
			f.seen[strings.ToLower(dn)] = true
			f.mailboxes = append(f.mailboxes, dn)
		}
		if id := string(r.Identity); f.stats && id != "" {
			f.statQueue = append(f.statQueue, id)
		}
	default:
		f.b.record(n, r)
	}
}

// queued is how many objects wait. f.mu must be held.
func (f *fedInventory) queued() int { return len(f.mailboxes) + len(f.statQueue) }

// dispatch hands waiting work to processes with room for it, starts
// another process when much work waits and every process is busy, and
// ends the processes' stdin once all work is answered. f.mu must be held.
func (f *fedInventory) dispatch() {
	if f.ctx.Err() != nil {
		return
	}
	active := 0
	for _, l := range f.lanes {
		if !l.dead && !(l.n == 0 && f.streaming) {
			active++
		}
	}
	full := true
	for _, l := range f.lanes {
		if l.dead || l.closed || (l.n == 0 && f.streaming) {
			continue
		}
		for len(l.inflight) < fedWindow && f.queued() > 0 {
			size := fedRequestItems
			if !f.streaming {
				// Towards the end, smaller requests even the processes out.
				size = min(size, max(10, (f.queued()+active*fedWindow-1)/(active*fedWindow)))
			}
			if f.streaming && f.queued() < size && len(l.inflight) > 0 {
				break // more is coming: wait for a full request
			}
			f.send(l, f.take(size))
		}
		if len(l.inflight) < fedWindow {
			full = false
		}
	}
	if full && f.queued() >= fedHelperItems && len(f.lanes) < f.c.cfg.Parallel {
		f.spawn()
		f.dispatch()
		return
	}
	if f.streaming || f.queued() > 0 {
		return
	}
	for _, l := range f.lanes {
		if len(l.inflight) > 0 {
			return
		}
	}
	for _, l := range f.lanes {
		if !l.closed {
			l.closed = true
			close(l.feed)
		}
	}
}

// take cuts a request of up to size objects from the queues. f.mu must
// be held.
func (f *fedInventory) take(size int) *fedRequest {
	f.nextID++
	r := &fedRequest{ID: "r" + strconv.Itoa(f.nextID)}
	n := min(size, len(f.mailboxes))
	r.Mailboxes, f.mailboxes = f.mailboxes[:n:n], f.mailboxes[n:]
	n = min(size-n, len(f.statQueue))
	r.Stats, f.statQueue = f.statQueue[:n:n], f.statQueue[n:]
	return r
}

// send writes a request to a process's stdin. The feed has room for the
// window, so this never blocks. f.mu must be held.
func (f *fedInventory) send(l *fedLane, r *fedRequest) {
	b, err := asciiJSON(r)
	if err != nil {
		f.requeue(r) // not reached: the request is strings only
		return
	}
	l.inflight[r.ID] = r
	l.feed <- append(b, '\n')
}
