package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"easgate/config"
	"easgate/engine"
	"easgate/engine/intune"
	"easgate/engine/sim"
	simexchange "easgate/engine/sim/exchange"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
	"easgate/engine/sim/winrm"
	"easgate/store"
)

// The fault matrix's organisation: small enough for a quick run, paged
// through Graph in several pages so that a single page can fail.
const (
	faultUsers    = 40
	faultSeed     = 31
	faultPageSize = 20
)

// openOpts are what a test changes about how easgate opens, beyond the
// config file.
type openOpts struct {
	// maxSize caps the store file, as a full disk does.
	maxSize int64
	// pageSize is the Intune client's page size; 0 means faultPageSize.
	pageSize int
}

// openFor opens easgate on the simulator's config as `easgate sync` does
// (app.go's adapters, engine options, a store of its own), with the
// changes o asks for.
func openFor(t testing.TB, s *sim.Sim, o openOpts) *app {
	t.Helper()
	cfg, _, err := config.Load(s.Info.ConfigFile)
	if err != nil {
		t.Fatalf("load the simulator's config: %v", err)
	}
	log, closeLog, err := openLogger(logOptions{file: cfg.Resolve(cfg.Log.File), level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{cfg: cfg, log: log, closes: []func() error{closeLog}}
	fail := func(err error) *app {
		a.close()
		t.Fatal(err)
		return nil
	}
	st, err := store.Open(cfg.Resolve(cfg.Store), store.Options{Logger: log, LockTimeout: time.Second, MaxSize: o.maxSize})
	if err != nil {
		return fail(fmt.Errorf("open the store: %w", err))
	}
	a.store = st
	a.closes = append(a.closes, st.Close)
	deps, closes, err := adapters(cfg, log, nil)
	if err != nil {
		return fail(err)
	}
	a.closes = append(a.closes, closes...)
	ic, err := intuneConfig(cfg)
	if err != nil {
		return fail(err)
	}
	ic.PageSize = cmp.Or(o.pageSize, faultPageSize)
	in, err := intune.New(ic, log.With("subsystem", "intune"))
	if err != nil {
		return fail(err)
	}
	a.closes = append(a.closes, func() error { in.Close(); return nil })
	deps.Intune, deps.Store = in, st
	eng, err := engine.New(deps, engineOptions(cfg, log, false))
	if err != nil {
		return fail(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		return fail(err)
	}
	a.engine, a.api = eng, eng
	a.closes = append(a.closes, eng.Close)
	return a
}

// scriptName returns the easgate script a simulated powershell.exe runs,
// read from its -EncodedCommand ("" when there is none).
func scriptName(p *winrm.Process) string {
	for i, a := range p.Args {
		if !strings.EqualFold(a, "-EncodedCommand") || i+1 >= len(p.Args) {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(p.Args[i+1])
		if err != nil || len(raw)%2 != 0 {
			return ""
		}
		units := make([]uint16, len(raw)/2)
		for j := range units {
			units[j] = uint16(raw[2*j]) | uint16(raw[2*j+1])<<8
		}
		text := string(utf16.Decode(units))
		const mark = "# easgate-script: "
		if rest, ok := strings.CutPrefix(text, mark); ok {
			name, _, _ := strings.Cut(rest, "\n")
			return name
		}
	}
	return ""
}

// onScript calls fn whenever the simulated Exchange starts a script whose
// name starts with prefix, before the script runs.
func onScript(s *sim.Sim, prefix string, fn func()) {
	s.WinRM.Handle("powershell.exe", winrm.ProgramFunc(func(ctx context.Context, p *winrm.Process) int {
		if strings.HasPrefix(scriptName(p), prefix) {
			fn()
		}
		return s.Exchange.Run(ctx, p)
	}))
}

// plainExchange undoes onScript.
func plainExchange(s *sim.Sim) { s.WinRM.Handle("powershell.exe", s.Exchange) }

// baseline gives a fresh store a history: a full sync, a manual link an
// admin made, and a quick sync. The reference and every row do the same.
func baseline(t *testing.T, a *app) {
	t.Helper()
	succeeded(t, syncNow(t, a, engine.SyncRequest{Actor: "test"}))
	ctx := context.Background()
	recs, err := a.engine.Devices(ctx, engine.DeviceQuery{Filter: engine.FilterUnmerged})
	if err != nil {
		t.Fatal(err)
	}
	linked := false
	for _, r := range recs {
		cands, err := a.engine.Candidates(ctx, r.Key())
		if err != nil || len(cands) == 0 {
			continue
		}
		if err := a.engine.Link(ctx, engine.LinkRequest{Device: r.Key(), MDMID: cands[0].MDM.ID, Actor: "anna.admin"}); err != nil {
			t.Fatalf("link %s: %v", r.Key(), err)
		}
		linked = true
		break
	}
	if !linked {
		t.Fatal("no unmerged device with an Intune candidate to link")
	}
	succeeded(t, syncNow(t, a, engine.SyncRequest{Kind: engine.RunQuick, Actor: "test"}))
}

// Devices the churn adds: new phones of users who never enrolled them.
var churnDevices = []string{"ApplFAULT00000001", "ApplFAULT00000002", "ApplFAULT00000003"}

// faultChurn changes the organisation the same way in every simulator of the
// seed: three new unmanaged phones (to block, and to mail their users), an
// unmanaged phone enrolled (to allow) and a compliant phone falling out of
// compliance (to block). It returns the address the first new phone's
// user is mailed at.
func faultChurn(t *testing.T, a *app, s *sim.Sim) (mailed string) {
	t.Helper()
	enroll := pick(t, a, engine.FilterUnmerged, func(r *engine.DeviceRecord) bool {
		return r.Decision.Access == engine.AccessBlock && r.DeviceType == "iPhone" && r.Link == ""
	})
	flip := pick(t, a, engine.FilterAllowed, func(r *engine.DeviceRecord) bool {
		return r.Merged() && r.Decision.Code == engine.ReasonCompliant && r.Link == engine.LinkEASID
	})
	now := time.Now().UTC()
	s.Org.Mu.Lock()
	defer s.Org.Mu.Unlock()
	if _, err := s.Org.Enroll(enroll.Mailbox, enroll.DeviceID, "compliant", true, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Org.SetCompliance(flip.MDMID, "noncompliant", now); err != nil {
		t.Fatal(err)
	}
	for i, id := range churnDevices {
		u := s.Org.Users[i+1]
		if err := s.Org.AddPartnership(u.UPN, &org.Partnership{DeviceID: id, DeviceType: "iPhone", DeviceModel: "iPhone17C3",
			DeviceOS: "iOS 18.3.2 22D82", UserAgent: "Apple-iPhone17C3/2203.82", FirstSync: now, LastSync: now, WhenChanged: now}); err != nil {
			t.Fatal(err)
		}
	}
	return s.Org.Users[1].PrimarySMTP
}

// ledger is what easgate has recorded: nothing of it may be lost.
type ledger struct {
	runs    []engine.Run
	journal []engine.JournalEntry
	links   map[engine.DeviceKey]engine.Link
	owned   map[engine.OwnedKey]engine.OwnedEntry
}

func readLedger(t *testing.T, a *app) ledger {
	t.Helper()
	ctx := context.Background()
	st, err := a.store.Load(ctx)
	if err != nil {
		t.Fatalf("load the store: %v", err)
	}
	runs, err := a.store.Runs(ctx, -1)
	if err != nil {
		t.Fatalf("runs: %v", err)
	}
	j, err := a.store.Journal(ctx, engine.JournalQuery{})
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	return ledger{runs: runs, journal: j, links: st.Links, owned: st.Owned}
}

// assertKept checks that after holds everything before held: every run as
// it was, every journal entry, every link, and the ownership of every
// entry Exchange still holds (lists, as exchangeLists returns them).
func assertKept(t *testing.T, before, after ledger, lists []string) {
	t.Helper()
	runs := map[string]engine.Run{}
	for _, r := range after.runs {
		runs[r.ID] = r
	}
	for _, r := range before.runs {
		got, ok := runs[r.ID]
		if !ok {
			t.Errorf("run %s (%s) is lost", r.ID, r.Status)
		} else if got.Status != r.Status || !got.Started.Equal(r.Started) || got.Counts != r.Counts {
			t.Errorf("run %s changed: %s %+v, was %s %+v", r.ID, got.Status, got.Counts, r.Status, r.Counts)
		}
	}
	seqs := map[uint64]engine.JournalEntry{}
	for _, j := range after.journal {
		seqs[j.Seq] = j
	}
	for _, j := range before.journal {
		got, ok := seqs[j.Seq]
		if !ok || got.Message != j.Message || got.RunID != j.RunID || got.OK != j.OK {
			t.Errorf("journal entry %d (%q) is lost or changed", j.Seq, j.Message)
		}
	}
	for k, l := range before.links {
		if after.links[k] != l {
			t.Errorf("link of %s is lost", k)
		}
	}
	// easgate may forget an entry it owns only once Exchange no longer
	// holds it: otherwise the entry could never be removed again.
	held := map[engine.OwnedKey]bool{}
	for _, e := range lists {
		upn, rest, _ := strings.Cut(e, "|")
		l, id, _ := strings.Cut(rest, "|")
		held[engine.OwnedKeyOf(upn, engine.List(l), id)] = true
	}
	for k := range before.owned {
		if _, ok := after.owned[k]; !ok && held[k] {
			t.Errorf("ownership of %s is lost while Exchange still holds the entry", k)
		}
	}
	for k := range held {
		if _, was := before.owned[k]; was {
			if _, ok := after.owned[k]; !ok {
				t.Errorf("ownership of %s is lost", k)
			}
		}
	}
}

// assertJournalPaired checks that every change the run began has its end
// in the journal, with a result.
func assertJournalPaired(t *testing.T, entries []engine.JournalEntry, runID string) {
	t.Helper()
	open := map[changeKey]int{}
	for _, j := range entries {
		if j.RunID != runID || j.Kind != engine.JournalChange || j.Change == nil {
			continue
		}
		k := changeKeyOf(*j.Change)
		switch j.Stage {
		case engine.StageBegin:
			open[k]++
		case engine.StageEnd:
			open[k]--
			if !j.OK && j.Error == "" {
				t.Errorf("run %s: failed change %v has no error", runID, k)
			}
		}
	}
	for k, n := range open {
		if n != 0 {
			t.Errorf("run %s: change %v begun %+d times more than ended", runID, k, n)
		}
	}
}

type changeKey struct {
	device engine.DeviceKey
	list   engine.List
	op     engine.Op
}

func changeKeyOf(c engine.Change) changeKey {
	return changeKey{engine.KeyOf(c.Mailbox, c.DeviceID), c.List, c.Op}
}

// accessStates is the DeviceAccessState Exchange computes for every EAS
// partnership, by "upn/deviceID".
func accessStates(s *sim.Sim) map[string]string {
	s.Org.Mu.RLock()
	defer s.Org.Mu.RUnlock()
	out := map[string]string{}
	for _, u := range s.Org.Users {
		for _, p := range u.Partnerships {
			if p.ClientType == org.ClientEAS {
				out[strings.ToLower(u.UPN+"/"+p.DeviceID)], _ = s.Org.AccessOf(u, p)
			}
		}
	}
	return out
}

// blockedEntries is the "upn|blocked|id" part of exchangeLists.
func blockedEntries(lists []string) []string {
	return slices.DeleteFunc(slices.Clone(lists), func(e string) bool { return !strings.Contains(e, "|blocked|") })
}

// faultEnv is one row's organisation and the easgate open on it.
type faultEnv struct {
	t      *testing.T
	s      *sim.Sim
	a      *app
	mailed string // the address the churn's first new phone's user gets mail at
	ex2    *winrm.Server
}

// reopen closes easgate and opens it again, as another process would.
func (f *faultEnv) reopen(o openOpts) {
	f.a.close()
	f.a = openFor(f.t, f.s, o)
	f.t.Cleanup(f.a.close)
}

// secondServer starts another WinRM endpoint on the same Exchange
// organisation and lists it second in the config: failover order.
func (f *faultEnv) secondServer() {
	t, s := f.t, f.s
	accounts := map[string]string{sim.ServiceUser: s.Info.WinRMPassword}
	f.ex2 = winrm.New(winrm.Config{Hostname: "EX02", Users: accounts})
	f.ex2.Handle("powershell.exe", simexchange.New(simexchange.Config{Org: s.Org, Accounts: accounts}))
	if _, err := f.ex2.Start("127.0.0.1:0", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.ex2.Close)
	editConfig(t, s, "servers: [127.0.0.1]", fmt.Sprintf("servers: [127.0.0.1, %q]", f.ex2.Addr()))
}

// faultCase is one row of the fault matrix.
type faultCase struct {
	name string
	// config prepares the organisation and config before easgate first
	// opens them.
	config func(f *faultEnv)
	// inject starts the fault; heal ends it.
	inject, heal func(f *faultEnv)
	// status is how the faulty run must end.
	status engine.RunStatus
	// says is what the run's record or journal must say happened; logs is
	// what the log must say.
	says, logs []string
	// complete means the faulty run read complete inventories, so it may
	// block; otherwise no new entry may appear on a blocked list.
	complete bool
	// unrecorded means the store could not record the run when it ended:
	// the next open must find it and record it as interrupted.
	unrecorded bool
	// unjournaled means the store could not journal the run's start, so
	// the run changed nothing.
	unjournaled bool
	// check, if set, checks more of the faulty run.
	check func(f *faultEnv, r engine.Run)
}

func faultCases() []faultCase {
	clearWinRM := func(f *faultEnv) { f.s.WinRM.ClearFaults() }
	clearGraph := func(f *faultEnv) { f.s.Graph.ClearFaults() }
	winrmUp := func(f *faultEnv) {
		if err := f.s.WinRM.SetDown(false); err != nil {
			f.t.Fatal(err)
		}
	}
	winrmDown := func(f *faultEnv) {
		if err := f.s.WinRM.SetDown(true); err != nil {
			f.t.Fatal(err)
		}
	}
	return []faultCase{
		{
			name: "exchange connection refused", inject: winrmDown, heal: winrmUp,
			status: engine.StatusFailed, says: []string{"read Exchange", "no Exchange server could be reached", "connection refused"},
		},
		{
			name: "exchange reset mid-receive during inventory",
			inject: func(f *faultEnv) {
				var once sync.Once
				onScript(f.s, "inventory", func() {
					once.Do(func() { f.s.WinRM.SetFault(winrm.OpReceive, winrm.Fault{Reset: true, Times: 1}) })
				})
			},
			heal:   func(f *faultEnv) { plainExchange(f.s); clearWinRM(f) },
			status: engine.StatusFailed, says: []string{"read Exchange"},
		},
		{
			name: "exchange reset mid-receive during apply",
			inject: func(f *faultEnv) {
				var once sync.Once
				onScript(f.s, "apply", func() {
					once.Do(func() { f.s.WinRM.SetFault(winrm.OpReceive, winrm.Fault{Reset: true, Times: 1}) })
				})
			},
			heal:   func(f *faultEnv) { plainExchange(f.s); clearWinRM(f) },
			status: engine.StatusSucceeded, complete: true, logs: []string{"retrying changes that failed transiently"},
		},
		{
			name:   "exchange HTTP 500",
			inject: func(f *faultEnv) { f.s.WinRM.SetFault(winrm.OpAny, winrm.Fault{Status: 500}) }, heal: clearWinRM,
			status: engine.StatusFailed, says: []string{"read Exchange", "HTTP 500"},
		},
		{
			name: "exchange HTTP 500 during apply",
			inject: func(f *faultEnv) {
				onScript(f.s, "apply", func() { f.s.WinRM.SetFault(winrm.OpReceive, winrm.Fault{Status: 500}) })
			},
			heal:   func(f *faultEnv) { plainExchange(f.s); clearWinRM(f) },
			status: engine.StatusSucceeded, complete: true, says: []string{"change(s) failed", "HTTP 500"},
		},
		{
			name:   "exchange refuses the credentials",
			inject: func(f *faultEnv) { f.s.WinRM.SetFault(winrm.OpAny, winrm.Fault{Unauthorized: true}) }, heal: clearWinRM,
			status: engine.StatusFailed, says: []string{"read Exchange", "refused the credentials"},
		},
		{
			name: "exchange slower than the command deadline",
			config: func(f *faultEnv) {
				editConfig(f.t, f.s, "  session: remote\n", "  session: remote\n  command_timeout: 2s\n")
			},
			inject: func(f *faultEnv) { f.s.WinRM.SetFault(winrm.OpReceive, winrm.Fault{Latency: 6 * time.Second}) },
			heal:   clearWinRM,
			status: engine.StatusFailed, says: []string{"read Exchange", "deadline exceeded"},
		},
		{
			name: "first exchange server down: failover", config: func(f *faultEnv) { f.secondServer() },
			inject: winrmDown, heal: winrmUp,
			status: engine.StatusSucceeded, complete: true, logs: []string{"exchange server skipped"},
			check: func(f *faultEnv, r engine.Run) {
				if r.Server != f.ex2.Addr() {
					f.t.Errorf("the run used server %q, want the second, %s", r.Server, f.ex2.Addr())
				}
			},
		},
		{
			name: "graph 429 storm",
			inject: func(f *faultEnv) {
				f.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Status: 429, RetryAfter: "0.2", Times: 5})
			},
			heal:   clearGraph,
			status: engine.StatusSucceeded, complete: true, logs: []string{"graph throttled or unavailable; retrying", "status=429"},
			check: func(f *faultEnv, r engine.Run) {
				if n := f.s.Graph.Stats().Faults; n != 5 {
					f.t.Errorf("Graph answered 429 %d times, want all 5 of the storm", n)
				}
			},
		},
		{
			name: "graph 429 beyond the retries",
			inject: func(f *faultEnv) {
				f.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Status: 429, RetryAfter: "0.05"})
			},
			heal:   clearGraph,
			status: engine.StatusFailed, says: []string{"read Intune", "429"},
		},
		{
			name: "graph 503",
			inject: func(f *faultEnv) {
				f.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Status: 503, RetryAfter: "0.05"})
			},
			heal:   clearGraph,
			status: engine.StatusFailed, says: []string{"read Intune", "503"},
		},
		{
			name: "graph page fails",
			inject: func(f *faultEnv) {
				f.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 2, Status: 500})
			},
			heal:   clearGraph,
			status: engine.StatusSucceeded, says: []string{"page 2 could not be read", "blocking change(s) withheld because an inventory is incomplete",
				"enrollment notification(s) withheld because the Intune inventory is incomplete"},
		},
		{
			name: "graph page cut off mid-body",
			inject: func(f *faultEnv) {
				f.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 2, Status: graph.StatusTruncated, Times: 1})
			},
			heal:   clearGraph,
			status: engine.StatusSucceeded, complete: true, logs: []string{"graph response broke off; reading it again"},
		},
		{
			name: "graph token endpoint down",
			inject: func(f *faultEnv) {
				f.s.Graph.AddFault(graph.Fault{Path: f.s.Graph.TokenPath(), Status: 503, RetryAfter: "0.05"})
			},
			heal:   clearGraph,
			status: engine.StatusFailed, says: []string{"read Intune", "get access token", "503 temporarily_unavailable"},
		},
		{
			name: "graph token expired",
			inject: func(f *faultEnv) {
				f.s.Graph.AddFault(graph.Fault{Path: graph.PathManagedDevices, ExpireTokens: true, Times: 1})
			},
			heal:   clearGraph,
			status: engine.StatusSucceeded, complete: true, logs: []string{"graph refused the access token; renewed it"},
			check: func(f *faultEnv, r engine.Run) {
				if n := f.s.Graph.Stats().Unauthorized; n != 1 {
					f.t.Errorf("Graph refused %d requests as unauthorized, want the one with the expired token", n)
				}
			},
		},
		{
			name: "smtp down",
			inject: func(f *faultEnv) {
				if err := f.s.SMTP.SetDown(true); err != nil {
					f.t.Fatal(err)
				}
			},
			heal: func(f *faultEnv) {
				if err := f.s.SMTP.SetDown(false); err != nil {
					f.t.Fatal(err)
				}
			},
			status: engine.StatusSucceeded, complete: true, says: []string{"notification(s) failed", "enrollment notification to"},
		},
		{
			name:   "smtp rejects a recipient",
			inject: func(f *faultEnv) { f.s.SMTP.RejectRecipient(f.mailed) },
			heal:   func(f *faultEnv) { f.s.SMTP.AcceptRecipient(f.mailed) },
			status: engine.StatusSucceeded, complete: true, says: []string{"1 notification(s) failed", "550"},
		},
		{
			name: "store disk full",
			inject: func(f *faultEnv) {
				// A compacted store has no free pages: the first write that
				// needs a page more meets the full disk.
				f.a.close()
				if r := run(f.t, "store", "compact", "--config", f.s.Info.ConfigFile); r.code != 0 {
					f.t.Fatalf("store compact: exit %d: %s", r.code, r.stderr)
				}
				fi, err := os.Stat(filepath.Join(f.s.Dir, "easgate.db"))
				if err != nil {
					f.t.Fatal(err)
				}
				f.reopen(openOpts{maxSize: fi.Size()})
			},
			heal:   func(f *faultEnv) { f.reopen(openOpts{}) },
			status: engine.StatusFailed, unjournaled: true, says: []string{"journal the run's start", "database reached maximum size"},
		},
		{
			// The store fails under a run that has begun to change
			// Exchange: the batch's end and the run's record cannot be
			// written. The next start finds the run in the journal and
			// records it as interrupted.
			name: "store write error mid-apply",
			inject: func(f *faultEnv) {
				onScript(f.s, "apply", func() { _ = f.a.store.Close() })
			},
			heal:   func(f *faultEnv) { plainExchange(f.s); f.reopen(openOpts{}) },
			status: engine.StatusFailed, complete: true, unrecorded: true, says: []string{"interrupted", "in flight"},
		},
	}
}

// TestFaultMatrix drives easgate through every fault of the matrix with the
// real clients against the simulators. For each: the run ends as the row
// says and says why; a run that read incomplete data blocks no one;
// nothing recorded before is lost; every change begun is ended in the
// journal; and once the fault is gone the next run leaves Exchange exactly
// as a run that never met the fault does.
func TestFaultMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault matrix runs about sixty syncs end to end")
	}
	// The reference: the same organisation and churn, never a fault.
	ref := startSim(t, faultUsers, faultSeed)
	ra := openFor(t, ref, openOpts{})
	baseline(t, ra)
	faultChurn(t, ra, ref)
	succeeded(t, syncNow(t, ra, engine.SyncRequest{Actor: "test"}))
	want := exchangeLists(ref)
	ra.close()

	for _, tc := range faultCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, faultUsers, faultSeed)
			f := &faultEnv{t: t, s: s}
			if tc.config != nil {
				tc.config(f)
			}
			first := openFor(t, s, openOpts{})
			baseline(t, first)
			f.mailed = faultChurn(t, first, s)
			first.close()

			// A fresh process meets the fault, as `easgate sync` would.
			f.a = openFor(t, s, openOpts{})
			t.Cleanup(f.a.close)
			before := readLedger(t, f.a)
			listsBefore := exchangeLists(s)
			statesBefore := accessStates(s)
			mailsBefore := len(s.SMTP.Messages())
			logBefore := logSize(t, s)
			tc.inject(f)
			rep := syncNow(t, f.a, engine.SyncRequest{Actor: "test"})
			r := rep.Run
			t.Logf("faulty run: %s %q problems %q counts %+v", r.Status, r.Error, r.Problems, r.Counts)
			if r.Status != tc.status {
				t.Errorf("run ended %s (%s), want %s", r.Status, r.Error, tc.status)
			}
			if !tc.complete {
				if added := newEntries(blockedEntries(listsBefore), blockedEntries(exchangeLists(s))); len(added) > 0 {
					t.Errorf("a run on incomplete data blocked %d device(s): %q", len(added), added)
				}
				for k, st := range accessStates(s) {
					if was := statesBefore[k]; st != was && st != org.StateAllowed {
						t.Errorf("a run on incomplete data took mail from %s: %s, was %s", k, st, was)
					}
				}
				if n := len(s.SMTP.Messages()) - mailsBefore; n > 0 {
					t.Errorf("a run on incomplete data told %d user(s) their phone is not enrolled", n)
				}
			}
			if tc.unjournaled && !slices.Equal(exchangeLists(s), listsBefore) {
				t.Error("a run whose start could not be journaled changed Exchange")
			}
			if !tc.unrecorded {
				after := readLedger(t, f.a)
				assertKept(t, before, after, exchangeLists(s))
				assertRecorded(t, after, r, tc.says, !tc.unjournaled)
				assertJournalPaired(t, after.journal, r.ID)
			}
			assertLogged(t, s, logBefore, tc.logs)
			if tc.check != nil {
				tc.check(f, r)
			}

			tc.heal(f)
			if tc.unrecorded {
				// Recorded when easgate opened the store again.
				after := readLedger(t, f.a)
				assertKept(t, before, after, exchangeLists(s))
				assertRecorded(t, after, r, tc.says, true)
			}
			healed := syncNow(t, f.a, engine.SyncRequest{Actor: "test"})
			if healed.Run.Status != engine.StatusSucceeded || len(healed.Run.Problems) > 0 {
				t.Errorf("healthy run after the fault: %s %q problems %q", healed.Run.Status, healed.Run.Error, healed.Run.Problems)
			}
			assertKept(t, before, readLedger(t, f.a), exchangeLists(s))
			assertExchangeAgrees(t, f.a, s)
			if got := exchangeLists(s); !slices.Equal(got, want) {
				t.Errorf("after the fault Exchange holds %d entries, a run without it %d:\n  missing %q\n  extra %q",
					len(got), len(want), newEntries(got, want), newEntries(want, got))
			}
		})
	}
}

// newEntries returns the entries of after that before lacks.
func newEntries(before, after []string) []string {
	var out []string
	for _, e := range after {
		if !slices.Contains(before, e) {
			out = append(out, e)
		}
	}
	return out
}

// assertRecorded checks that the store holds the run as it ended, that
// the journal shows it starting (when journaled) and that its record or
// journal says each of says.
func assertRecorded(t *testing.T, l ledger, r engine.Run, says []string, journaled bool) {
	t.Helper()
	var rec *engine.Run
	for i := range l.runs {
		if l.runs[i].ID == r.ID {
			rec = &l.runs[i]
		}
	}
	if rec == nil {
		t.Errorf("run %s is not in the run history", r.ID)
		return
	}
	if rec.Status != r.Status {
		t.Errorf("run %s recorded as %s, ended %s", r.ID, rec.Status, r.Status)
	}
	text := []string{rec.Error}
	text = append(text, rec.Problems...)
	begun := false
	for _, j := range l.journal {
		if j.RunID == r.ID {
			text = append(text, j.Message, j.Error)
			begun = begun || (j.Kind == engine.JournalRun && j.Stage == engine.StageBegin)
		}
	}
	if journaled && !begun {
		t.Errorf("the journal does not show run %s starting", r.ID)
	}
	all := strings.Join(text, "\n")
	for _, s := range says {
		if !strings.Contains(all, s) {
			t.Errorf("run %s's record and journal do not say %q:\n%s", r.ID, s, all)
		}
	}
}

func logSize(t *testing.T, s *sim.Sim) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(s.Dir, "easgate.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// assertLogged checks that the log written since offset says each of want.
func assertLogged(t *testing.T, s *sim.Sim, offset int64, want []string) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "easgate.log"))
	if err != nil {
		t.Fatal(err)
	}
	b = b[min(offset, int64(len(b))):]
	for _, w := range want {
		if !strings.Contains(string(b), w) {
			t.Errorf("the log does not say %q", w)
		}
	}
}

// TestShellsLeftByAnOutageAreDeleted: a shell whose Delete fails while
// Exchange is down or failing stays on the server, counting against the
// user's quota of 30 shells for hours; easgate deletes it once the server
// answers again. (The soak found runs failing with w:QuotaLimit.)
func TestShellsLeftByAnOutageAreDeleted(t *testing.T) {
	s := startSim(t, 10, 2)
	a := openFor(t, s, openOpts{})
	succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	pooled := s.WinRM.Stats().ShellsOpen
	outages := []struct {
		name         string
		start, end   func()
		wantSyncFail bool
	}{
		{name: "HTTP 500", start: func() { s.WinRM.SetFault(winrm.OpAny, winrm.Fault{Status: 500}) }, end: s.WinRM.ClearFaults},
		{name: "down", start: func() { _ = s.WinRM.SetDown(true) }, end: func() { _ = s.WinRM.SetDown(false) }},
	}
	for _, o := range outages {
		for range 3 {
			o.start()
			if r := syncNow(t, a, engine.SyncRequest{}).Run; r.Status != engine.StatusFailed {
				t.Fatalf("%s: run %s, want failed", o.name, r.Status)
			}
			o.end()
		}
		succeeded(t, syncNow(t, a, engine.SyncRequest{}))
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.WinRM.Stats().ShellsOpen > pooled && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.WinRM.Stats(); st.ShellsOpen > pooled {
		t.Errorf("after the outages the server holds %d shells (%d created), before them %d", st.ShellsOpen, st.ShellsCreated, pooled)
	}
}
