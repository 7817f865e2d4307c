package tui

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// deviceDetail is a device's page: the EAS record and the MDM record in
// full, the decision and its reason, who set the access state, the list
// entries easgate owns, the notification history, Exchange's live
// statistics (on demand: i) and the device's journal.
type deviceDetail struct {
	env       *env
	key       engine.DeviceKey
	rec       engine.DeviceRecord // from the list until the detail arrives
	detail    *engine.DeviceDetail
	cands     []engine.Candidate
	candErr   error
	err       error
	loaded    bool
	stats     *engine.DeviceStatistics
	statsErr  error
	statsBusy bool
	sc        *scroller
	width     int
}

// deviceDetailMsg carries a device's detail, its link candidates (for an
// unmerged device) and its journal as lines, newest first.
type deviceDetailMsg struct {
	key     engine.DeviceKey
	detail  *engine.DeviceDetail
	cands   []engine.Candidate
	candErr error
	lines   []line
	search  []string
	err     error
}

// statsMsg carries Exchange's live statistics of a device.
type statsMsg struct {
	key   engine.DeviceKey
	stats *engine.DeviceStatistics
	err   error
}

// newDeviceDetail returns the page of a device.
func newDeviceDetail(e *env, r engine.DeviceRecord) *deviceDetail {
	return &deviceDetail{env: e, key: r.Key(), rec: r, sc: newScroller(e.styles, e.keys, "journal entries")}
}

// load reads the device's detail and, when it is unmerged, the MDM records
// it could be linked to.
func (v *deviceDetail) load() tea.Cmd {
	e, k := v.env, v.key
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		d, err := e.api.Device(ctx, k)
		if err != nil {
			return deviceDetailMsg{key: k, err: fmt.Errorf("read device %s: %w", k, err)}
		}
		msg := deviceDetailMsg{key: k, detail: d}
		if !d.Record.Merged() && d.Record.IsEAS() {
			msg.cands, msg.candErr = e.api.Candidates(ctx, k)
		}
		msg.lines, msg.search = journalLines(reversed(d.Journal), e.now().Location())
		return msg
	}
}

// readStatistics reads Exchange's statistics of the device: slow, so only
// when asked.
func readStatistics(e *env, k engine.DeviceKey) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, actionTimeout)
		defer cancel()
		s, err := e.api.Statistics(ctx, k)
		if err != nil {
			err = fmt.Errorf("read statistics of %s: %w", k, err)
		}
		return statsMsg{key: k, stats: s, err: err}
	}
}

// record is the device record the page shows.
func (v *deviceDetail) record() *engine.DeviceRecord {
	if v.detail != nil {
		return &v.detail.Record
	}
	return &v.rec
}

// targets returns the page's device.
func (v *deviceDetail) targets() (*engine.DeviceRecord, []engine.DeviceRecord) {
	return v.record(), nil
}

// build lays the page out for the current width.
func (v *deviceDetail) build() {
	s := v.env.styles
	now := v.env.now()
	loc := now.Location()
	r := v.record()
	const fw = 16 // field label width
	var out []string
	add := func(l string) { out = append(out, l) }
	field := func(name, value string) {
		add("  " + s.label.Render(fmt.Sprintf("%-*s", fw, name)) + clean(orDash(value)))
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return stamp(t, loc, "2006-01-02 15:04:05") + " (" + ago(now, t) + ")"
	}
	heading := func(h string) {
		add("")
		add(s.heading.Render(h))
	}

	add(s.heading.Render("Device ") + clean(r.Mailbox) + " / " + clean(r.DeviceID))
	state, st := accessLabel(r.AccessState)
	want, wt := wantLabel(r)
	add("  " + s.label.Render(fmt.Sprintf("%-*s", fw, "Exchange says")) + s.tone(st).Render(clean(state)) +
		" · set by " + byWhom(r) + " · since " + stamp(blockedSince(r), loc, layoutDateTime))
	add("  " + s.label.Render(fmt.Sprintf("%-*s", fw, "easgate wants")) + s.tone(wt).Render(want) +
		" (" + string(r.Decision.Code) + ")")
	for i, l := range wrap(clean(orDash(r.Decision.Reason)), max(v.width-fw-4, 20)) {
		name := "Why"
		if i > 0 {
			name = ""
		}
		add("  " + s.label.Render(fmt.Sprintf("%-*s", fw, name)) + l)
	}
	if !r.InScope {
		field("Scope", "out of the policy's scope")
	}

	heading("EAS record (Exchange)")
	field("Mailbox", r.Mailbox)
	field("Primary SMTP", r.PrimarySMTP)
	field("Identity", r.Identity)
	field("Device ID", r.DeviceID)
	field("Type", r.DeviceType)
	field("Model", r.DeviceModel)
	field("OS", r.DeviceOS)
	field("User agent", r.UserAgent)
	field("Client type", orDash(r.ClientType))
	field("Access state", string(r.AccessState)+" ("+orDash(r.AccessReason)+")")
	field("First sync", when(r.FirstSync))
	field("Last sync", when(r.LastSync))
	field("When changed", when(r.WhenChanged))

	heading("MDM record (Intune)")
	switch m := v.mdm(); {
	case m != nil:
		field("ID", m.ID)
		field("Linked", linkWords(r.Link))
		field("User", m.UserPrincipalName)
		field("Email", m.Email)
		field("Name", m.DeviceName)
		field("OS", m.OperatingSystem+" "+m.OSVersion)
		field("Model", strings.TrimSpace(m.Manufacturer+" "+m.Model))
		field("EAS device ID", orDash(m.EASDeviceID))
		field("EAS activated", fmt.Sprint(m.EASActivated))
		c, ct := complianceLabel(m.Compliance)
		add("  " + s.label.Render(fmt.Sprintf("%-*s", fw, "Compliance")) + s.tone(ct).Render(clean(c)))
		field("Management", m.ManagementAgent)
		field("Exchange access", orDash(m.ExchangeAccessState))
		field("Enrolled", when(m.Enrolled))
		field("Last sync", when(m.LastSync))
	case r.Merged():
		field("ID", r.MDMID)
		field("Linked", linkWords(r.Link))
		c, ct := complianceLabel(r.Compliance)
		add("  " + s.label.Render(fmt.Sprintf("%-*s", fw, "Compliance")) + s.tone(ct).Render(clean(c)))
	default:
		add("  " + s.muted.Render("none: no Intune record reports this device's EAS ID, and it is not linked by hand"))
		v.candidates(add)
	}

	heading("easgate's list entries")
	if owned := v.owned(); len(owned) == 0 {
		add("  " + s.muted.Render("none: easgate has not put this device on the mailbox's lists"))
	} else {
		for _, o := range owned {
			l := fmt.Sprintf("  on the %s list since %s (run %s)", o.List, stamp(o.Added, loc, layoutDateTime), clean(o.RunID))
			if o.Grandfathered {
				l += " · grandfathered when the org default changed"
			}
			add(l)
		}
	}

	heading("Notifications")
	n := r.Notify
	switch {
	case n.Count == 0 && n.LastError == "":
		add("  " + s.muted.Render("never notified"))
	default:
		field("Sent", fmt.Sprintf("%d time(s)", n.Count))
		field("First", when(n.FirstSent))
		field("Last", when(n.LastSent))
		if n.LastError != "" {
			add("  " + s.label.Render(fmt.Sprintf("%-*s", fw, "Last error")) + s.bad.Render(clean(n.LastError)) +
				" (" + stamp(n.LastTried, loc, layoutDateTime) + ")")
		}
	}

	heading("Exchange statistics (live)")
	switch {
	case v.statsBusy:
		add("  " + s.muted.Render("reading Get-MobileDeviceStatistics…"))
	case v.statsErr != nil:
		add("  " + s.bad.Render(clean(v.statsErr.Error())))
	case v.stats == nil:
		add("  " + s.muted.Render("press i to read them from Exchange (slow)"))
	default:
		field("Last success", when(v.stats.LastSuccessSync))
		field("Policy update", when(v.stats.LastPolicyUpdate))
		field("Status", v.stats.Status)
		field("Wipe status", orDash(v.stats.WipeStatus))
		for _, k := range slices.Sorted(maps.Keys(v.stats.Fields)) {
			field(k, v.stats.Fields[k])
		}
	}

	heading("Journal")
	switch {
	case v.err != nil:
		add("  " + s.bad.Render(clean(v.err.Error())))
	case !v.loaded:
		add("  " + s.muted.Render("reading…"))
	case len(v.sc.list) == 0:
		add("  " + s.muted.Render("nothing recorded for this device"))
	default:
		add("  " + s.muted.Render(count(len(v.sc.list))+" entries, newest first"))
	}
	v.sc.setHead(out)
}

// candidates lists the MDM records the device could be linked to.
func (v *deviceDetail) candidates(add func(string)) {
	s := v.env.styles
	switch {
	case !v.loaded:
		return
	case v.candErr != nil:
		add("  " + s.bad.Render("could not read link candidates: "+clean(v.candErr.Error())))
	case len(v.cands) == 0:
		add("  " + s.muted.Render("no MDM record of this user could be linked"))
	default:
		add("  " + fmt.Sprintf("%d MDM record(s) of this user could be this device (l: link):", len(v.cands)))
		for _, c := range v.cands {
			mark := "   "
			if c.Suggested {
				mark = " ★ "
			}
			add(" " + mark + candidateText(&c))
		}
	}
}

// candidateText is one link candidate on one line.
func candidateText(c *engine.Candidate) string {
	m := &c.MDM
	comp, _ := complianceLabel(m.Compliance)
	text := fmt.Sprintf("%s  %s · %s %s · %s · %s", clean(m.ID), clean(orDash(m.DeviceName)), clean(m.OperatingSystem),
		clean(m.OSVersion), clean(m.Model), comp)
	if c.Suggested {
		text += " · suggested"
	}
	if c.Why != "" {
		text += " — " + clean(c.Why)
	}
	return text
}

// mdm is the device's MDM record, if the detail has it.
func (v *deviceDetail) mdm() *engine.MDMDevice {
	if v.detail == nil {
		return nil
	}
	return v.detail.MDM
}

// owned is easgate's list entries of the device.
func (v *deviceDetail) owned() []engine.OwnedEntry {
	if v.detail == nil {
		return nil
	}
	return v.detail.Owned
}

// linkWords says how a record was merged.
func linkWords(k engine.LinkKind) string {
	switch k {
	case engine.LinkEASID:
		return "by EAS device ID"
	case engine.LinkManual:
		return "by hand"
	}
	return orDash(string(k))
}

// wrap breaks text into lines of at most width cells.
func wrap(text string, width int) []string {
	return strings.Split(ansi.Wrap(text, width, ""), "\n")
}

// Update takes the detail, the statistics and keys.
func (v *deviceDetail) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case deviceDetailMsg:
		if msg.key != v.key {
			return nil
		}
		v.loaded, v.err = true, msg.err
		if msg.err == nil {
			v.detail, v.cands, v.candErr = msg.detail, msg.cands, msg.candErr
			v.sc.setList(msg.lines, msg.search)
		}
		v.build()
	case statsMsg:
		if msg.key != v.key {
			return nil
		}
		v.statsBusy, v.stats, v.statsErr = false, msg.stats, msg.err
		v.build()
	case tea.KeyPressMsg:
		if !v.sc.capturing() && key.Matches(msg, v.env.keys.statistics) {
			if v.statsBusy {
				return nil
			}
			v.statsBusy = true
			v.build()
			return readStatistics(v.env, v.key)
		}
		return v.sc.Update(msg)
	}
	return nil
}

// View renders the page.
func (v *deviceDetail) View() string { return v.sc.View() }

// SetSize sizes the page and lays it out again.
func (v *deviceDetail) SetSize(width, height int) {
	v.sc.SetSize(width, height)
	if width != v.width {
		v.width = width
		v.build()
	}
}

// Title names the page.
func (v *deviceDetail) Title() string { return "Device " + clean(v.rec.DeviceID) }

// Count is how many journal entries the page holds.
func (v *deviceDetail) Count() (int, bool) { return len(v.sc.list), v.loaded }

// Capturing reports whether the filter input is open.
func (v *deviceDetail) Capturing() bool { return v.sc.capturing() }

// Escape clears the filter.
func (v *deviceDetail) Escape() bool { return v.sc.escape() }

// HelpKeys returns the page's keys.
func (v *deviceDetail) HelpKeys() ([]key.Binding, []helpGroup) {
	short, groups := v.sc.helpKeys()
	if v.sc.editing {
		return short, groups
	}
	return append(short, v.env.keys.back), append(groups, helpGroup{title: "Device", keys: []key.Binding{v.env.keys.statistics}})
}

// wheel scrolls the page (the mouse wheel).
func (v *deviceDetail) wheel(n int) { v.sc.scroll(n) }
