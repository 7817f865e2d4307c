package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"easgate/engine"
)

// maxLineProblems caps how many malformed lines an inventory lists one by
// one; the rest are counted.
const maxLineProblems = 20

// inventoryPayload is the inventory script's stdin.
type inventoryPayload struct {
	sessionPayload
	Since *string `json:"since"` // ISO 8601 UTC; null for a full inventory
	Stats bool    `json:"stats"` // read last sync times (Get-MobileDeviceStatistics)
}

// Inventory reads Exchange: the organisation's ActiveSync settings and
// device access rules, every mobile device (or, with q.Since set, those
// first synced since then), and the CAS mailboxes holding them. A quick
// inventory runs in one PowerShell process; a full one spreads its work
// over up to Parallel processes (fullInventory). A line the parser cannot read, an error the script
// reports, or output that ends early is listed in Problems, which makes
// the inventory incomplete; a failure of the whole run is an error.
func (c *Client) Inventory(ctx context.Context, q engine.InventoryQuery) (*engine.ExchangeInventory, error) {
	if q.Since.IsZero() {
		return c.fullInventory(ctx, q)
	}
	var since *string
	if !q.Since.IsZero() {
		s := q.Since.UTC().Format(time.RFC3339)
		since = &s
	}
	stats := !c.cfg.SkipStatistics || !q.Since.IsZero()
	payload := func(sp sessionPayload) any { return inventoryPayload{sessionPayload: sp, Since: since, Stats: stats} }
	b := newInventoryBuilder(q, c.log)
	b.stats = stats
	res, err := c.run(ctx, inventoryScript, payload, b.line)
	if err != nil {
		return nil, fmt.Errorf("exchange inventory: %w", err)
	}
	if err := scriptError(inventoryScript, res); err != nil {
		return nil, fmt.Errorf("exchange inventory: %w", err)
	}
	inv := b.finish(res.stderr)
	inv.Server = res.server
	c.log.Info("exchange inventory read", logServer, res.server, "quick", inv.Quick, "devices", len(inv.Devices),
		"mailboxes", len(inv.Mailboxes), "problems", len(inv.Problems), "stdout_bytes", res.bytes, "duration", res.elapsed)
	return inv, nil
}

// inventoryBuilder assembles an inventory from the script's lines as they
// arrive.
type inventoryBuilder struct {
	q         engine.InventoryQuery
	log       *slog.Logger
	inv       *engine.ExchangeInventory
	mailboxes map[string]*mailboxRec // by lower-cased distinguished name
	devices   [][]deviceRec          // in chunks of deviceChunk, never copied to grow
	nDevices  int
	lastSync  map[string]time.Time // by device identity
	stats     bool                 // the script was asked for statistics
	begun     bool
	end       *record
	malformed int
	parser    lineParser
}

// mailboxRec is a mailbox line, mapped.
type mailboxRec struct {
	dn string
	m  engine.Mailbox
}

// deviceChunk is how many device lines one chunk of the builder holds.
// 150,000 partnerships in one doubling slice would be copied some twenty
// times on the way, 190 MB of garbage.
const deviceChunk = 4096

func (b *inventoryBuilder) addDevice(r deviceRec) {
	if n := len(b.devices); n == 0 || len(b.devices[n-1]) == deviceChunk {
		b.devices = append(b.devices, make([]deviceRec, 0, deviceChunk))
	}
	last := &b.devices[len(b.devices)-1]
	*last = append(*last, r)
	b.nDevices++
}

// deviceRec is a device line, mapped; the mailbox fields wait for the join.
type deviceRec struct {
	mailboxDN string
	d         engine.EASDevice
}

func newInventoryBuilder(q engine.InventoryQuery, log *slog.Logger) *inventoryBuilder {
	return &inventoryBuilder{
		q:   q,
		log: log,
		inv: &engine.ExchangeInventory{Quick: !q.Since.IsZero(), Since: q.Since,
			Rules: []engine.DeviceAccessRule{}, Mailboxes: []engine.Mailbox{}, Devices: []engine.EASDevice{}},
		mailboxes: map[string]*mailboxRec{},
		lastSync:  map[string]time.Time{},
	}
}

func (b *inventoryBuilder) problem(format string, a ...any) {
	b.inv.Problems = append(b.inv.Problems, fmt.Sprintf(format, a...))
}

// line takes one stdout line.
func (b *inventoryBuilder) line(n int, line []byte) {
	err := b.parser.parse(line, func(r *record) { b.record(n, r) })
	if err != nil {
		b.malformed++
		if b.malformed <= maxLineProblems {
			b.problem("stdout line %d is malformed and was skipped: %v", n, err)
		}
	}
}

// record takes one record of line n.
func (b *inventoryBuilder) record(n int, r *record) {
	switch r.T {
	case "begin":
		b.begun = true
		if string(r.Script) != scriptInventory {
			b.problem("stdout line %d: output of script %q, want %s", n, r.Script, scriptInventory)
		}
	case "org":
		b.inv.Org = engine.OrgSettings{DefaultAccessLevel: enumName(r.DefaultAccessLevel, accessLevels),
			AdminMailRecipients: r.AdminMailRecipients, UserMailInsert: string(r.UserMailInsert)}
	case "rule":
		b.inv.Rules = append(b.inv.Rules, engine.DeviceAccessRule{Characteristic: enumName(r.Characteristic, characteristics),
			QueryString: string(r.QueryString), AccessLevel: enumName(r.AccessLevel, accessLevels)})
	case "device":
		d := engine.EASDevice{
			Identity: string(r.Identity), DeviceID: string(r.DeviceID),
			DeviceType: string(r.DeviceType), DeviceModel: string(r.DeviceModel), DeviceOS: string(r.DeviceOS),
			UserAgent: string(r.DeviceUserAgent), ClientType: string(r.ClientType),
			AccessState:  engine.AccessState(enumName(r.DeviceAccessState, accessStates)),
			AccessReason: reasonName(r.DeviceAccessStateReason),
			FirstSync:    time.Time(r.FirstSyncTime), WhenChanged: time.Time(r.WhenChangedUTC),
		}
		if d.WhenChanged.IsZero() {
			d.WhenChanged = time.Time(r.WhenChanged)
		}
		b.addDevice(deviceRec{mailboxDN: string(r.MailboxDN), d: d})
	case "mailbox":
		key := strings.ToLower(string(r.DistinguishedName))
		if _, dup := b.mailboxes[key]; !dup {
			b.mailboxes[key] = &mailboxRec{dn: string(r.DistinguishedName), m: mailboxOf(r)}
		}
	case "stat":
		b.lastSync[string(r.Identity)] = time.Time(r.LastSuccessSync)
	case "error":
		b.problem("mailbox %s could not be read: %s", r.MailboxDN, r.Message)
	case "warning":
		b.log.Warn("exchange inventory warning", "message", string(r.Message))
	case "end":
		end := *r
		b.end = &end
	default:
		b.log.Debug("exchange output line of unknown type skipped", "line", n, "type", r.T)
	}
}

// finish checks the output was whole and joins devices to mailboxes.
func (b *inventoryBuilder) finish(stderr *stderrRecords) *engine.ExchangeInventory {
	inv := b.inv
	if b.malformed > maxLineProblems {
		b.problem("%d more malformed stdout lines were skipped", b.malformed-maxLineProblems)
	}
	for _, e := range stderr.Errors {
		b.problem("powershell reported an error: %s", e)
	}
	if stderr.Plain != "" {
		b.problem("powershell wrote to stderr: %s", stderr.Plain)
	}
	for _, w := range stderr.Warnings {
		if strings.Contains(w, "ResultSize") {
			b.problem("exchange truncated a result: %s", w)
		} else {
			b.log.Warn("exchange inventory warning", "message", w)
		}
	}
	if !b.begun {
		b.problem("the output lacks the script's begin line")
	}
	switch {
	case b.end == nil:
		b.problem("the output ended before the script's end line, after %d devices", b.nDevices)
	case b.end.Devices != nil && int(*b.end.Devices) != b.nDevices:
		b.problem("the script listed %d devices but %d were read", int(*b.end.Devices), b.nDevices)
	}

	// Devices name their mailbox by the DN as the mailbox line spells it,
	// nearly always: look that up first, and lower-case only when it
	// misses.
	byDN := make(map[string]*engine.Mailbox, len(b.mailboxes))
	exact := make(map[string]*engine.Mailbox, len(b.mailboxes))
	for key, r := range b.mailboxes {
		m := &r.m
		if m.UPN == "" {
			b.problem("mailbox %s has no user principal name; its primary SMTP address stands in", r.dn)
			m.UPN = m.PrimarySMTP
		}
		byDN[key] = m
		exact[r.dn] = m
	}
	seen := make(map[engine.DeviceKey]bool, b.nDevices)
	used := map[*engine.Mailbox]bool{}
	noStats := 0
	keys := make([]engine.DeviceKey, 0, b.nDevices)
	inv.Devices = make([]engine.EASDevice, 0, b.nDevices)
	for ci, chunk := range b.devices {
		b.devices[ci] = nil // copied into inv.Devices as it goes
		for _, r := range chunk {
			d := r.d
			m := exact[r.mailboxDN]
			if m == nil {
				m = byDN[strings.ToLower(r.mailboxDN)]
			}
			switch {
			case d.DeviceID == "":
				b.problem("a device without an ID was skipped (%s)", d.Identity)
				continue
			case m == nil:
				b.problem("device %s was skipped: its mailbox %q is not in the inventory", d.DeviceID, r.mailboxDN)
				continue
			}
			last, ok := b.lastSync[d.Identity]
			if b.stats && !ok {
				noStats++
			}
			d.Mailbox, d.PrimarySMTP, d.LastSync = m.UPN, m.PrimarySMTP, last
			if b.inv.Quick && d.FirstSync.Before(b.q.Since) {
				continue // in the script's day of margin, not since the last run
			}
			key := d.Key()
			if seen[key] {
				b.problem("device %s of %s appeared twice", d.DeviceID, d.Mailbox)
				continue
			}
			seen[key] = true
			used[m] = true
			inv.Devices = append(inv.Devices, d)
			keys = append(keys, key)
		}
	}
	b.devices, b.nDevices = nil, 0
	for _, m := range byDN {
		if !inv.Quick || used[m] {
			inv.Mailboxes = append(inv.Mailboxes, *m)
		}
	}
	if noStats > 0 {
		// Their LastSync reads zero: not known, rather than never.
		b.log.Warn("exchange devices without statistics", "devices", noStats)
	}
	upns := make([]string, len(inv.Mailboxes))
	for i := range inv.Mailboxes {
		upns[i] = strings.ToLower(inv.Mailboxes[i].UPN)
	}
	sortByKey(inv.Mailboxes, upns)
	sortByKey(inv.Devices, keys)
	return inv
}

// sortByKey sorts items by their keys, given in the same order, in place:
// it sorts a permutation and then follows its cycles, so that no second
// copy of the items is made, and each key is computed once rather than at
// every comparison.
func sortByKey[T any, K ~string](items []T, keys []K) {
	order := make([]int32, len(items))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(string(keys[a]), string(keys[b])) })
	// items[i] must become items[order[i]].
	for i := range order {
		if order[i] < 0 {
			continue
		}
		tmp := items[i]
		j := i
		for {
			k := int(order[j])
			order[j] = -1
			if k == i {
				items[j] = tmp
				break
			}
			items[j] = items[k]
			j = k
		}
	}
}

// mailboxOf maps a mailbox line; addresses lose their smtp: prefix.
func mailboxOf(r *record) engine.Mailbox {
	m := engine.Mailbox{UPN: string(r.UserPrincipalName), PrimarySMTP: string(r.PrimarySmtpAddress),
		Allowed: nonNil(r.ActiveSyncAllowedDeviceIDs), Blocked: nonNil(r.ActiveSyncBlockedDeviceIDs)}
	for _, a := range r.EmailAddresses {
		if len(a) > 5 && strings.EqualFold(a[:5], "smtp:") {
			m.Addresses = append(m.Addresses, a[5:])
		}
	}
	m.Allowed = slices.DeleteFunc(m.Allowed, func(id string) bool { return id == "" })
	m.Blocked = slices.DeleteFunc(m.Blocked, func(id string) bool { return id == "" })
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// RawDevice is one partnership as `easgate exchange devices --output json`
// prints it (CONTRACTS.md): what Get-MobileDevice and its mailbox said,
// before any merge or decision.
type RawDevice struct {
	Mailbox      string     `json:"mailbox"`
	PrimarySMTP  string     `json:"primary_smtp"`
	Identity     string     `json:"identity"`
	DeviceID     string     `json:"device_id"`
	DeviceType   string     `json:"device_type"`
	DeviceModel  string     `json:"device_model"`
	DeviceOS     string     `json:"device_os"`
	UserAgent    string     `json:"user_agent"`
	ClientType   string     `json:"client_type"`
	AccessState  string     `json:"access_state"`
	AccessReason string     `json:"access_reason"`
	FirstSync    time.Time  `json:"first_sync"`
	LastSync     *time.Time `json:"last_sync"`
	WhenChanged  *time.Time `json:"when_changed"`
}

// RawDevices returns the inventory's partnerships in the raw shape, in
// the inventory's order; never nil.
func RawDevices(inv *engine.ExchangeInventory) []RawDevice {
	out := make([]RawDevice, 0, len(inv.Devices))
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	for _, d := range inv.Devices {
		out = append(out, RawDevice{Mailbox: d.Mailbox, PrimarySMTP: d.PrimarySMTP, Identity: d.Identity, DeviceID: d.DeviceID,
			DeviceType: d.DeviceType, DeviceModel: d.DeviceModel, DeviceOS: d.DeviceOS, UserAgent: d.UserAgent, ClientType: d.ClientType,
			AccessState: string(d.AccessState), AccessReason: d.AccessReason, FirstSync: d.FirstSync.UTC(),
			LastSync: opt(d.LastSync), WhenChanged: opt(d.WhenChanged)})
	}
	return out
}
