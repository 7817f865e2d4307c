package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
	"easgate/engine/sim/winrm"
)

// EnvSoak bounds the soak test: a Go duration (e.g. "10m" for a long soak
// before a release). Unset, it runs defaultSoak.
const EnvSoak = "EASGATE_SOAK"

const defaultSoak = 60 * time.Second

// soakFault is a fault the soak injects for one run.
type soakFault struct {
	name string
	// weight is how often it is picked, relative to the others.
	weight int
	inject func(sk *soak)
	heal   func(sk *soak)
}

// soak is the state of one soak: the simulators, the easgate that runs
// against them for the whole soak, and what was done to them.
type soak struct {
	t   *testing.T
	s   *sim.Sim
	a   *app
	rnd *rand.Rand

	newIDs   int
	runs     []engine.Run // every run, in order
	faults   map[string]int
	churned  map[string]int
	survived int
	complete int
	braked   int
}

func soakFaults() []soakFault {
	winrmUp := func(sk *soak) {
		if err := sk.s.WinRM.SetDown(false); err != nil {
			sk.t.Fatal(err)
		}
	}
	clearWinRM := func(sk *soak) { plainExchange(sk.s); sk.s.WinRM.ClearFaults() }
	clearGraph := func(sk *soak) { sk.s.Graph.ClearFaults() }
	once := func(op winrm.Op, f winrm.Fault) func(sk *soak) {
		return func(sk *soak) {
			var o sync.Once
			onScript(sk.s, "apply", func() { o.Do(func() { sk.s.WinRM.SetFault(op, f) }) })
		}
	}
	return []soakFault{
		{name: "exchange down", weight: 3, inject: func(sk *soak) {
			if err := sk.s.WinRM.SetDown(true); err != nil {
				sk.t.Fatal(err)
			}
		}, heal: winrmUp},
		{name: "exchange HTTP 500", weight: 2, inject: func(sk *soak) { sk.s.WinRM.SetFault(winrm.OpAny, winrm.Fault{Status: 500}) }, heal: clearWinRM},
		{name: "exchange refuses the credentials", weight: 2, inject: func(sk *soak) {
			sk.s.WinRM.SetFault(winrm.OpAny, winrm.Fault{Unauthorized: true})
		}, heal: clearWinRM},
		{name: "exchange reset mid-receive of the inventory", weight: 2, inject: func(sk *soak) {
			sk.s.WinRM.SetFault(winrm.OpReceive, winrm.Fault{Reset: true, Times: 1})
		}, heal: clearWinRM},
		{name: "exchange reset mid-receive of an apply", weight: 2, inject: once(winrm.OpReceive, winrm.Fault{Reset: true, Times: 1}), heal: clearWinRM},
		{name: "exchange HTTP 500 on an apply", weight: 1, inject: once(winrm.OpReceive, winrm.Fault{Status: 500, Times: 1}), heal: clearWinRM},
		{name: "exchange slow", weight: 2, inject: func(sk *soak) {
			sk.s.WinRM.SetFault(winrm.OpReceive, winrm.Fault{Latency: 50 * time.Millisecond})
		}, heal: clearWinRM},
		{name: "graph 429 storm", weight: 3, inject: func(sk *soak) {
			sk.s.Graph.AddFault(graph.Fault{Status: 429, RetryAfter: "0.02", Times: 1 + sk.rnd.IntN(8)})
		}, heal: clearGraph},
		{name: "graph 503", weight: 2, inject: func(sk *soak) {
			sk.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Status: 503, RetryAfter: "0.01"})
		}, heal: clearGraph},
		{name: "graph page fails", weight: 3, inject: func(sk *soak) {
			sk.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 2 + sk.rnd.IntN(2), Status: 500})
		}, heal: clearGraph},
		{name: "graph page cut off", weight: 2, inject: func(sk *soak) {
			sk.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 1 + sk.rnd.IntN(3), Status: graph.StatusTruncated, Times: 1})
		}, heal: clearGraph},
		{name: "graph token expired", weight: 2, inject: func(sk *soak) {
			sk.s.Graph.AddFault(graph.Fault{ExpireTokens: true, Times: 1})
		}, heal: clearGraph},
		{name: "smtp down", weight: 2, inject: func(sk *soak) {
			if err := sk.s.SMTP.SetDown(true); err != nil {
				sk.t.Fatal(err)
			}
		}, heal: func(sk *soak) {
			if err := sk.s.SMTP.SetDown(false); err != nil {
				sk.t.Fatal(err)
			}
		}},
		{name: "smtp rejects recipients", weight: 2, inject: func(sk *soak) {
			sk.s.Org.Mu.RLock()
			defer sk.s.Org.Mu.RUnlock()
			for _, u := range sk.s.Org.Users {
				if sk.rnd.IntN(3) == 0 {
					sk.s.SMTP.RejectRecipient(u.PrimarySMTP)
				}
			}
		}, heal: func(sk *soak) {
			sk.s.Org.Mu.RLock()
			defer sk.s.Org.Mu.RUnlock()
			for _, u := range sk.s.Org.Users {
				sk.s.SMTP.AcceptRecipient(u.PrimarySMTP)
			}
		}},
	}
}

// churn changes the organisation at random, as its users and admins do
// between two runs.
func (sk *soak) churn() {
	o := sk.s.Org
	o.Mu.Lock()
	defer o.Mu.Unlock()
	now := time.Now().UTC()
	user := func() *org.User { return o.Users[sk.rnd.IntN(len(o.Users))] }
	for range 1 + sk.rnd.IntN(4) {
		switch k := sk.rnd.IntN(7); k {
		case 0, 1: // a phone syncs mail for the first time
			sk.newIDs++
			u := user()
			if err := o.AddPartnership(u.UPN, &org.Partnership{DeviceID: fmt.Sprintf("ApplSOAK%08d", sk.newIDs), DeviceType: "iPhone",
				DeviceModel: "iPhone17C3", DeviceOS: "iOS 18.3.2 22D82", UserAgent: "Apple-iPhone17C3/2203.82",
				FirstSync: now, LastSync: now, WhenChanged: now}); err == nil {
				sk.churned["new partnership"]++
			}
		case 2: // a user enrolls a phone
			u := user()
			if len(u.Partnerships) == 0 {
				continue
			}
			p := u.Partnerships[sk.rnd.IntN(len(u.Partnerships))]
			if p.ClientType != org.ClientEAS || enrolled(o, p.DeviceID) {
				continue
			}
			state := "compliant"
			if sk.rnd.IntN(4) == 0 {
				state = "noncompliant"
			}
			if _, err := o.Enroll(u.UPN, p.DeviceID, state, sk.rnd.IntN(5) > 0, now); err == nil {
				sk.churned["enrollment"]++
			}
		case 3: // a phone's compliance flips
			if len(o.Managed) == 0 {
				continue
			}
			md := o.Managed[sk.rnd.IntN(len(o.Managed))]
			state := "compliant"
			if md.ComplianceState == "compliant" {
				state = "noncompliant"
			}
			if o.SetCompliance(md.ID, state, now) == nil {
				sk.churned["compliance flip"]++
			}
		case 4: // a partnership is removed in Exchange
			u := user()
			if len(u.Partnerships) < 2 {
				continue
			}
			if o.RemovePartnership(u.UPN, u.Partnerships[sk.rnd.IntN(len(u.Partnerships))].DeviceID) == nil {
				sk.churned["partnership removed"]++
			}
		case 5: // a device is retired in Intune
			if len(o.Managed) < 10 {
				continue
			}
			o.RemoveManaged(o.Managed[sk.rnd.IntN(len(o.Managed))].ID)
			sk.churned["device retired"]++
		case 6: // a user joins or leaves the policy's exemption group
			g := o.GroupByID(org.GroupExempt)
			u := user()
			if i := slices.Index(g.Members, u.ID); i >= 0 {
				g.Members = slices.Delete(slices.Clone(g.Members), i, i+1)
			} else {
				g.Members = append(slices.Clone(g.Members), u.ID)
			}
			sk.churned["group membership"]++
		}
	}
}

func enrolled(o *org.Org, deviceID string) bool {
	for _, md := range o.Managed {
		if strings.EqualFold(md.EASDeviceID, deviceID) {
			return true
		}
	}
	return false
}

// settled samples the goroutine and file descriptor counts once they stop
// falling: connections and shells closing after a run take a moment.
func settled() (goroutines, fds int) {
	goroutines, fds = runtime.NumGoroutine(), openFDs()
	for range 20 {
		time.Sleep(50 * time.Millisecond)
		g, f := runtime.NumGoroutine(), openFDs()
		if g >= goroutines && f >= fds {
			break
		}
		goroutines, fds = min(g, goroutines), min(f, fds)
	}
	return goroutines, fds
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// maxShells is how many WinRM shells easgate may keep open between runs:
// its pool (exchange.parallel in the simulator's config) and one more.
const maxShells = 5

// shellsSettled returns how many shells the simulated server has open once
// the client has had a moment to delete those it let go.
func (sk *soak) shellsSettled() int64 {
	var open int64
	for range 40 {
		if open = sk.s.WinRM.Stats().ShellsOpen; open <= maxShells {
			return open
		}
		time.Sleep(50 * time.Millisecond)
	}
	return open
}

// check tests the invariants after one run; it returns how many failed.
func (sk *soak) check(r engine.Run) (failed int) {
	t := sk.t
	t.Helper()
	fail := func(format string, args ...any) {
		failed++
		if failed <= 5 {
			t.Errorf("run %d (%s %s, %s): "+format, append([]any{len(sk.runs), r.Kind, r.ID, r.Status}, args...)...)
		}
	}
	ctx := context.Background()

	// Every change the run began has its end in the journal, with a result.
	j, err := sk.a.store.Journal(ctx, engine.JournalQuery{RunID: r.ID})
	if err != nil {
		fail("journal: %v", err)
	}
	open := map[changeKey]int{}
	for _, e := range j {
		if e.Kind != engine.JournalChange || e.Change == nil {
			continue
		}
		switch e.Stage {
		case engine.StageBegin:
			open[changeKeyOf(*e.Change)]++
		case engine.StageEnd:
			open[changeKeyOf(*e.Change)]--
			if !e.OK && e.Error == "" {
				fail("change %s ended failed without an error", e.Message)
			}
		}
	}
	for k, n := range open {
		if n != 0 {
			fail("change %v begun without an end in the journal", k)
		}
	}

	// The history holds every run, as it ended.
	runs, err := sk.a.store.Runs(ctx, -1)
	if err != nil {
		fail("runs: %v", err)
	}
	if len(runs) != len(sk.runs) {
		fail("the history holds %d runs, %d were run", len(runs), len(sk.runs))
	}
	for i, want := range sk.runs {
		if i >= len(runs) {
			break
		}
		if got := runs[len(runs)-1-i]; got.ID != want.ID || got.Status != want.Status {
			fail("history entry %d is %s %s, want %s %s", i, got.ID, got.Status, want.ID, want.Status)
		}
	}

	// A complete run leaves Exchange's lists as easgate decided.
	if !runComplete(r) {
		return failed
	}
	sk.complete++
	recs, err := sk.a.engine.Devices(ctx, engine.DeviceQuery{Filter: engine.FilterAll})
	if err != nil {
		fail("devices: %v", err)
	}
	o := sk.s.Org
	o.Mu.RLock()
	defer o.Mu.RUnlock()
	for _, rec := range recs {
		if !rec.IsEAS() {
			continue
		}
		u := o.UserByUPN(rec.Mailbox)
		p := u.Partnership(rec.DeviceID)
		if p == nil {
			if r.Kind == engine.RunFull {
				fail("%s: a full run kept the record of a removed partnership", rec.Key())
			}
			continue // a quick run sees removals only at the next full one
		}
		inAllowed, inBlocked := containsFold(u.Allowed, rec.DeviceID), containsFold(u.Blocked, rec.DeviceID)
		switch {
		case rec.Decision.Exempt:
		case rec.Decision.Access == engine.AccessAllow && (!inAllowed || inBlocked):
			fail("%s: allowed (%s) but lists are allowed=%v blocked=%v", rec.Key(), rec.Decision.Reason, inAllowed, inBlocked)
		case rec.Decision.Access == engine.AccessBlock && !inBlocked:
			fail("%s: blocked (%s) but not on the blocked list", rec.Key(), rec.Decision.Reason)
		}
		if state, _ := o.AccessOf(u, p); string(rec.AccessState) != state {
			fail("%s: easgate says %s, Exchange says %s", rec.Key(), rec.AccessState, state)
		}
	}
	return failed
}

// runComplete reports whether a run read both sides whole and made every
// change it planned.
func runComplete(r engine.Run) bool {
	if r.Status != engine.StatusSucceeded || r.Counts.ChangesFailed > 0 {
		return false
	}
	for _, p := range r.Problems {
		if strings.HasPrefix(p, "Exchange:") || strings.HasPrefix(p, "Intune:") || strings.Contains(p, "withheld") {
			return false
		}
	}
	return true
}

// TestSoak runs quick and full syncs for a while (EASGATE_SOAK) against the
// simulators, with random faults and random organisation churn before each,
// on one easgate that stays open like the service. After every run: the
// journal pairs every change begun with its end, the history holds every
// run, and a complete run leaves Exchange's lists as easgate decided. At the
// end, after the faults are gone, a full run converges, and goroutines and
// file descriptors have not grown.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs for a minute")
	}
	d := defaultSoak
	if v := os.Getenv(EnvSoak); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("%s=%q: %v", EnvSoak, v, err)
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("soak for %s, seed %d", d, seed)
	s := startSim(t, faultUsers, faultSeed)
	editConfig(t, s, "notify:\n", "policy:\n  exclude_groups: ["+org.GroupExempt+"]\nnotify:\n")
	sk := &soak{t: t, s: s, rnd: rand.New(rand.NewPCG(seed, 9)), faults: map[string]int{}, churned: map[string]int{}}
	sk.a = openFor(t, s, openOpts{})
	t.Cleanup(sk.a.close)
	faults := soakFaults()
	total := 0
	for _, f := range faults {
		total += f.weight
	}
	pickFault := func() *soakFault {
		n := sk.rnd.IntN(total)
		for i := range faults {
			if n < faults[i].weight {
				return &faults[i]
			}
			n -= faults[i].weight
		}
		return nil
	}

	ctx := context.Background()
	runOne := func(kind engine.RunKind, f *soakFault) engine.Run {
		if f != nil {
			f.inject(sk)
			sk.faults[f.name]++
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		rep, err := sk.a.engine.Sync(rctx, engine.SyncRequest{Kind: kind, Actor: "soak"})
		cancel()
		if f != nil {
			f.heal(sk)
		}
		if err != nil {
			name := "none"
			if f != nil {
				name = f.name
			}
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("run %d (%s, fault %s): sync: %v\n%s", len(sk.runs)+1, kind, name, err, buf)
		}
		r := rep.Run
		sk.runs = append(sk.runs, r)
		if r.Status == engine.StatusBraked {
			// An admin looks and approves: the approval is a run too.
			sk.braked++
			rep, err := sk.a.engine.Approve(ctx, engine.PlanRequest{PlanID: rep.Plan.ID, Actor: "soak"})
			if err != nil {
				t.Fatalf("approve: %v", err)
			}
			sk.runs = append(sk.runs, rep.Run)
			r = rep.Run
		}
		return r
	}

	first := runOne(engine.RunFull, nil)
	if first.Status != engine.StatusSucceeded {
		t.Fatalf("first run: %s %s", first.Status, first.Error)
	}
	var g0, fd0 int
	deadline := time.Now().Add(d)
	failures := 0
	loop := 0
	for i := 0; time.Now().Before(deadline) && failures < 20; i++ {
		loop++
		sk.churn()
		kind := engine.RunQuick
		if sk.rnd.IntN(4) == 0 {
			kind = engine.RunFull
		}
		var f *soakFault
		if sk.rnd.IntN(2) == 0 {
			f = pickFault()
		}
		r := runOne(kind, f)
		n := sk.check(r)
		if open := sk.shellsSettled(); open > maxShells {
			n++
			name := "none"
			if f != nil {
				name = f.name
			}
			t.Errorf("run %d (%s, fault %s): %d WinRM shells left open on the server, want at most %d", len(sk.runs), kind, name, open, maxShells)
		}
		failures += n
		if n == 0 {
			sk.survived++
		}
		if i == 10 {
			// After a few runs every pool (shells, connections) is warm.
			g0, fd0 = settled()
		}
	}

	// The faults are gone: a full run converges.
	final := runOne(engine.RunFull, nil)
	if !runComplete(final) {
		t.Errorf("the last, healthy run: %s %q problems %q", final.Status, final.Error, final.Problems)
	}
	failures += sk.check(final)
	assertExchangeAgrees(t, sk.a, s)

	g1, fd1 := settled()
	t.Logf("soak: %d runs, %d of %d runs under churn and random faults survived with every invariant (%d complete, %d braked and approved)",
		len(sk.runs), sk.survived, loop, sk.complete, sk.braked)
	t.Logf("soak: %d faults injected (%d WinRM requests and %d Graph requests failed by them): %v",
		sum(sk.faults), s.WinRM.Stats().Injected, s.Graph.Stats().Faults, sk.faults)
	t.Logf("soak: churn %v", sk.churned)
	t.Logf("soak: goroutines %d → %d, file descriptors %d → %d", g0, g1, fd0, fd1)
	if len(sk.runs) < 50 {
		t.Errorf("only %d runs in %s", len(sk.runs), d)
	}
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if fd1 > fd0+10 {
		t.Errorf("file descriptors grew from %d to %d", fd0, fd1)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
