package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine"
)

// fixedClock is a Clock for tests.
type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// testLogger writes the store's logs into the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// openTemp opens a new store in a temporary directory and closes it at the
// end of the test.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(filepath.Join(t.TempDir(), "easgate.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopen closes s and opens its file again with opts.
func reopen(t testing.TB, s *Store, opts Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s2, err := Open(s.Path(), opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	return s2
}

func mustCommit(t testing.TB, s *Store, c *engine.Commit) uint64 {
	t.Helper()
	serial, err := s.Commit(context.Background(), c)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return serial
}

func mustLoad(t testing.TB, s *Store) *engine.State {
	t.Helper()
	st, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return st
}

// fill sets every exported field reachable from v to a distinct non-zero
// value, so that a codec that drops a field fails a round trip.
func fill(t testing.TB, v reflect.Value, n *int) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("f%d/ü\x00\"<'%d", *n, *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(*n) * int64(time.Millisecond))
			return
		}
		v.SetInt(-int64(*n) * 1000003)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) * 1000003)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(t0.Add(time.Duration(*n) * 1234567891)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), n)
			}
		}
	case reflect.Slice:
		sl := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, sl.Index(i), n)
		}
		v.Set(sl)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), n)
		v.Set(p)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(t, k, n)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		t.Fatalf("fill: cannot fill a %s", v.Type())
	}
}

// filled returns a T with every field set.
func filled[T any](t testing.TB, seed int) T {
	var v T
	n := seed * 1000
	fill(t, reflect.ValueOf(&v).Elem(), &n)
	return v
}

// gen makes a plausible organisation's worth of engine values: the sizes of
// strings are what Exchange and Graph return.
type gen struct {
	r *rand.Rand
}

func newGen(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

const hexDigits = "0123456789ABCDEF"

func (g *gen) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[g.r.IntN(16)]
	}
	return string(b)
}

func (g *gen) guid() string {
	h := strings.ToLower(g.hex(32))
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (g *gen) ago(days int) time.Time {
	return t0.Add(-time.Duration(g.r.Int64N(int64(days) * int64(24*time.Hour)))).Truncate(time.Millisecond)
}

func upnOf(i int) string { return fmt.Sprintf("firstname%06d.lastname@contoso.com", i) }

type profile struct{ typ, model, os, ua, mdmOS, manufacturer string }

var profiles = []profile{
	{"iPhone", "iPhone15,2", "iOS 17.4.1 21E236", "Apple-iPhone15C2/2104.236", "iOS", "Apple"},
	{"SamsungDevice", "SM-S918B", "Android 14.0.0", "Android-SAMSUNG-SM-S918B/101.400", "Android", "samsung"},
	{"Android", "Pixel 8", "Android 14", "Android/14-EAS-2.0", "Android", "Google"},
	{"iPad", "iPad13,18", "iOS 17.3 21D50", "Apple-iPad13C18/2103.50", "iOS", "Apple"},
}

// record returns the i-th device record; mailbox i*2/3 so that 150,000
// records share 100,000 mailboxes.
func (g *gen) record(i int) engine.DeviceRecord {
	p := profiles[g.r.IntN(len(profiles))]
	mb := upnOf(i * 2 / 3)
	id := g.hex(32)
	first := g.ago(900)
	r := engine.DeviceRecord{
		EASDevice: engine.EASDevice{
			Mailbox:      mb,
			PrimarySMTP:  mb,
			Identity:     "contoso.local/Users/Firstname Lastname/ExchangeActiveSyncDevices/" + p.typ + "§" + id,
			DeviceID:     id,
			DeviceType:   p.typ,
			DeviceModel:  p.model,
			DeviceOS:     p.os,
			UserAgent:    p.ua,
			ClientType:   "EAS",
			AccessState:  engine.StateAllowed,
			AccessReason: "Individual",
			FirstSync:    first,
			LastSync:     g.ago(30),
			WhenChanged:  g.ago(60),
		},
		Decision: engine.Decision{Access: engine.AccessAllow, Code: engine.ReasonCompliant,
			Reason: "enrolled in Intune and compliant (MDM record " + g.guid() + ")"},
		Since:   first,
		InScope: true,
	}
	if g.r.IntN(10) < 8 {
		r.MDMID = g.guid()
		r.Link = engine.LinkEASID
	} else {
		r.AccessState = engine.StateBlocked
		r.Decision = engine.Decision{Access: engine.AccessBlock, Code: engine.ReasonUnmanaged,
			Reason: "not enrolled in Intune (no MDM record with EAS ID " + id[:8] + "…)"}
		r.Notify = engine.NotifyState{FirstSent: g.ago(10), LastSent: g.ago(3), Count: 2, LastTried: g.ago(3)}
	}
	return r
}

func (g *gen) mdm(i int) engine.MDMDevice {
	p := profiles[g.r.IntN(len(profiles))]
	upn := upnOf(i * 2 / 3)
	return engine.MDMDevice{
		ID:                  g.guid(),
		UserID:              g.guid(),
		UserPrincipalName:   upn,
		Email:               upn,
		DeviceName:          fmt.Sprintf("Firstname's %s", p.model),
		OperatingSystem:     p.mdmOS,
		OSVersion:           "17.4.1",
		Model:               p.model,
		Manufacturer:        p.manufacturer,
		EASDeviceID:         g.hex(32),
		EASActivated:        true,
		Compliance:          engine.ComplianceCompliant,
		ManagementAgent:     "mdm",
		ExchangeAccessState: "allowed",
		Enrolled:            g.ago(700),
		LastSync:            g.ago(2),
	}
}

func (g *gen) mailbox(i int, allowed []string) engine.Mailbox {
	upn := upnOf(i)
	return engine.Mailbox{
		UPN:         upn,
		PrimarySMTP: upn,
		Addresses:   []string{upn, fmt.Sprintf("f.lastname%06d@contoso.mail.onmicrosoft.com", i)},
		Allowed:     allowed,
		Blocked:     []string{},
	}
}

// snapshot builds a full first commit: records, MDM records, mailboxes
// holding the records' device IDs in their allow lists, and the owned entries.
func (g *gen) snapshot(records, mdm, mailboxes int) *engine.Commit {
	c := &engine.Commit{Meta: &engine.Meta{
		Org:      engine.OrgSettings{DefaultAccessLevel: "Quarantine"},
		LastFull: t0, MDMCount: mdm, Servers: []string{"ex01.contoso.local"},
	}}
	allowed := make(map[int][]string, mailboxes)
	for i := range records {
		r := g.record(i)
		c.PutRecords.Items = append(c.PutRecords.Items, r)
		m := i * 2 / 3
		if r.Decision.Access == engine.AccessAllow && m < mailboxes {
			allowed[m] = append(allowed[m], r.DeviceID)
			c.PutOwned.Items = append(c.PutOwned.Items, engine.OwnedEntry{Mailbox: r.Mailbox, DeviceID: r.DeviceID,
				List: engine.ListAllowed, Added: t0, RunID: "run-0001"})
		}
	}
	for i := range mdm {
		c.PutMDM.Items = append(c.PutMDM.Items, g.mdm(i))
	}
	for i := range mailboxes {
		c.PutMailboxes.Items = append(c.PutMailboxes.Items, g.mailbox(i, allowed[i]))
	}
	return c
}

// journalEntry is a change journal entry as the engine's applier writes it:
// the begin entry's message is the change's reason, the end entry's a
// summary.
func (g *gen) journalEntry(runID string, dev engine.DeviceKey, stage string) engine.JournalEntry {
	mb, id := dev.Split()
	c := engine.Change{Mailbox: mb, DeviceID: strings.ToUpper(id), List: engine.ListAllowed, Op: engine.OpAdd,
		Reason: "enrolled in Intune and compliant (MDM record " + g.guid() + ", matched by EAS device ID)"}
	e := engine.JournalEntry{Time: t0, RunID: runID, Kind: engine.JournalChange, Stage: stage,
		Device: engine.KeyOf(c.Mailbox, c.DeviceID), Change: &c, Actor: "easgate", Message: c.Reason}
	if stage == engine.StageEnd {
		e.OK = true
		e.Message = fmt.Sprintf("%s %s %s list: done", c.Op, c.DeviceID, c.List)
	}
	return e
}

// runIDOf is the engine's run ID format.
func runIDOf(i int) string {
	return fmt.Sprintf("%s-%03d", t0.Add(time.Duration(i)*time.Hour).Format("20060102T150405.000Z"), i%1000)
}

// jsonOf returns v as JSON, for comparing values whose times went through
// JSON.
func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }
