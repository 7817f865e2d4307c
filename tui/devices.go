package tui

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// deviceView lists a subset of the device records: the Unmerged, Blocked
// and Devices views are three of them. They share one read of every record
// (one engine call, one copy in memory); each shows the rows its match
// selects, in its own order.
type deviceView struct {
	env   *env
	id    tabID
	title string
	match func(*engine.DeviceRecord) bool // nil: every record
	table *table[engine.DeviceRecord]
}

// devicesMsg carries every device record with its filter text and
// identity, and each device view's part of them, computed off the UI
// goroutine.
type devicesMsg struct {
	rows   []engine.DeviceRecord
	search []string
	ids    []string
	parts  map[tabID]devicePart
	err    error
}

// devicePart is one device view's rows and their order.
type devicePart struct {
	base  []int
	order []int
	spec  sortSpec
}

// deviceQuery is what a device view asks of a read: which rows, sorted how.
type deviceQuery struct {
	tab   tabID
	match func(*engine.DeviceRecord) bool
	cmp   func(a, b *engine.DeviceRecord) int
	spec  sortSpec
}

// query is what the view asks of the next read.
func (v *deviceView) query() deviceQuery {
	q := deviceQuery{tab: v.id, match: v.match, spec: v.table.spec}
	if q.spec.col >= 0 {
		q.cmp = v.table.sorts[q.spec.col]
	}
	return q
}

// fetchDevices reads every device record once and computes, for each
// query, the rows it shows and their order.
func fetchDevices(e *env, queries []deviceQuery) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		rows, err := e.api.Devices(ctx, engine.DeviceQuery{Filter: engine.FilterAll})
		if err != nil {
			return devicesMsg{err: fmt.Errorf("read devices: %w", err)}
		}
		return buildDevices(rows, queries)
	}
}

// buildDevices computes what the device views show of rows.
func buildDevices(rows []engine.DeviceRecord, queries []deviceQuery) devicesMsg {
	msg := devicesMsg{rows: rows, search: make([]string, len(rows)), ids: make([]string, len(rows)),
		parts: make(map[tabID]devicePart, len(queries))}
	for i := range rows {
		r := &rows[i]
		msg.search[i] = deviceSearch(r)
		msg.ids[i] = string(r.Key())
	}
	for _, q := range queries {
		var p devicePart
		if q.match != nil {
			p.base = make([]int, 0, 64)
			for i := range rows {
				if q.match(&rows[i]) {
					p.base = append(p.base, i)
				}
			}
		}
		p.spec = natural
		if q.cmp != nil {
			p.order, p.spec = sortOrder(rows, p.base, q.cmp, q.spec.desc), q.spec
		}
		msg.parts[q.tab] = p
	}
	return msg
}

// deviceSearch is a record's filter text: who, which device, its states,
// the decision's reason code and who set the access. It stays short (the
// reason in words is left out): a keystroke scans it for every device.
func deviceSearch(r *engine.DeviceRecord) string {
	state, _ := accessLabel(r.AccessState)
	smtp := r.PrimarySMTP
	if strings.EqualFold(smtp, r.Mailbox) {
		smtp = ""
	}
	return searchText(r.Mailbox, smtp, r.DeviceID, r.DeviceType, r.DeviceModel, r.DeviceOS, r.UserAgent,
		state, string(r.Decision.Access), string(r.Decision.Code), r.MDMID, string(r.Compliance), byWhom(r))
}

// newUnmergedView lists EAS records without an Intune record: who, which
// device, when it appeared and last synced, its access, whether the user
// was told how to enroll, and the MDM record the planner suggests.
func newUnmergedView(e *env) *deviceView {
	cols := []column{
		{title: "User", min: 15, max: 30},
		{title: "Type", min: 7, max: 10, drop: 6},
		{title: "Model", min: 10, weight: 1},
		{title: "OS", min: 8, max: 16, drop: 5},
		{title: "First seen", min: 10, max: 10, drop: 4},
		{title: "Last sync", min: 9, max: 9, drop: 1},
		{title: "Access", min: 11, max: 11},
		{title: "Notified", min: 8, max: 10, drop: 2},
		{title: "Suggested", min: 10, max: 14, drop: 3},
	}
	cells := func(r *engine.DeviceRecord, now time.Time, out []cell) {
		loc := now.Location()
		state, tn := accessLabel(r.AccessState)
		out[0] = cell{text: r.Mailbox}
		out[1] = cell{text: r.DeviceType}
		out[2] = cell{text: r.DeviceModel}
		out[3] = cell{text: r.DeviceOS}
		out[4] = cell{text: stamp(r.FirstSync, loc, layoutDate)}
		out[5] = cell{text: ago(now, r.LastSync)}
		out[6] = cell{text: state, tone: tn}
		out[7] = notifiedCell(r.Notify, now)
		out[8] = cell{text: orDash(r.Suggested), tone: toneAccent}
		if r.Suggested == "" {
			out[8].tone = toneMuted
		}
	}
	sorts := []func(a, b *engine.DeviceRecord) int{
		byUser, byText(func(r *engine.DeviceRecord) string { return r.DeviceType }),
		byText(func(r *engine.DeviceRecord) string { return r.DeviceModel }),
		byText(func(r *engine.DeviceRecord) string { return r.DeviceOS }),
		byTime(func(r *engine.DeviceRecord) time.Time { return r.FirstSync }),
		byTime(func(r *engine.DeviceRecord) time.Time { return r.LastSync }),
		byText(func(r *engine.DeviceRecord) string { return string(r.AccessState) }),
		func(a, b *engine.DeviceRecord) int { return cmp.Compare(a.Notify.Count, b.Notify.Count) },
		byText(func(r *engine.DeviceRecord) string { return r.Suggested }),
	}
	return newDeviceView(e, tabUnmerged, "unmerged EAS devices", cols, cells, sorts,
		func(r *engine.DeviceRecord) bool { return engine.FilterUnmerged.Match(r) })
}

// newBlockedView lists blocked and quarantined devices: why in words, by
// whom (easgate, an admin, an Exchange rule, the org default) and since when.
func newBlockedView(e *env) *deviceView {
	cols := []column{
		{title: "User", min: 16, weight: 1},
		{title: "Device", min: 10, weight: 1, drop: 3},
		{title: "State", min: 11, max: 11},
		{title: "Why", min: 20, weight: 4},
		{title: "By", min: 8, max: 14, drop: 2},
		{title: "Since", min: 10, max: 10, drop: 1},
	}
	cells := func(r *engine.DeviceRecord, now time.Time, out []cell) {
		state, tn := accessLabel(r.AccessState)
		out[0] = cell{text: r.Mailbox}
		out[1] = cell{text: deviceName(r)}
		out[2] = cell{text: state, tone: tn}
		out[3] = cell{text: blockReason(r)}
		out[4] = cell{text: byWhom(r)}
		out[5] = cell{text: stamp(blockedSince(r), now.Location(), layoutDate)}
	}
	sorts := []func(a, b *engine.DeviceRecord) int{
		byUser, byText(deviceName), byText(func(r *engine.DeviceRecord) string { return string(r.AccessState) }),
		byText(blockReason), byText(byWhom), byTime(blockedSince),
	}
	return newDeviceView(e, tabBlocked, "blocked or quarantined devices", cols, cells, sorts,
		func(r *engine.DeviceRecord) bool {
			return r.AccessState == engine.StateBlocked || r.AccessState == engine.StateQuarantined
		})
}

// newAllView lists every EAS record with its MDM record beside it: the
// partnership on the left, the merge, compliance and decision on the right.
func newAllView(e *env) *deviceView {
	cols := []column{
		{title: "User", min: 16, weight: 2},
		{title: "Device ID", min: 10, weight: 1, drop: 4},
		{title: "Device", min: 10, weight: 1, drop: 2},
		{title: "Exchange", min: 11, max: 11},
		{title: "Last sync", min: 9, max: 9, drop: 5},
		{title: "│ MDM", min: 10, weight: 1, drop: 6},
		{title: "Link", min: 6, max: 6, drop: 3},
		{title: "Compliance", min: 12, max: 13, drop: 1},
		{title: "Wants", min: 10, max: 10},
	}
	cells := func(r *engine.DeviceRecord, now time.Time, out []cell) {
		state, tn := accessLabel(r.AccessState)
		out[0] = cell{text: r.Mailbox}
		out[1] = cell{text: r.DeviceID}
		out[2] = cell{text: deviceName(r)}
		out[3] = cell{text: state, tone: tn}
		out[4] = cell{text: ago(now, r.LastSync)}
		if r.Merged() {
			out[5] = cell{text: "│ " + r.MDMID}
			out[6] = cell{text: string(r.Link)}
			c, ct := complianceLabel(r.Compliance)
			out[7] = cell{text: c, tone: ct}
		} else {
			out[5] = cell{text: "│ none", tone: toneMuted}
			out[6] = cell{text: "—", tone: toneMuted}
			out[7] = cell{text: "—", tone: toneMuted}
		}
		w, wt := wantLabel(r)
		out[8] = cell{text: w, tone: wt}
	}
	sorts := []func(a, b *engine.DeviceRecord) int{
		byUser, byText(func(r *engine.DeviceRecord) string { return r.DeviceID }), byText(deviceName),
		byText(func(r *engine.DeviceRecord) string { return string(r.AccessState) }),
		byTime(func(r *engine.DeviceRecord) time.Time { return r.LastSync }),
		byText(func(r *engine.DeviceRecord) string { return r.MDMID }),
		byText(func(r *engine.DeviceRecord) string { return string(r.Link) }),
		byText(func(r *engine.DeviceRecord) string { return string(r.Compliance) }),
		byText(func(r *engine.DeviceRecord) string { w, _ := wantLabel(r); return w }),
	}
	return newDeviceView(e, tabDevices, "devices", cols, cells, sorts, nil)
}

// newDeviceView builds a device view.
func newDeviceView(e *env, id tabID, noun string, cols []column, cells func(*engine.DeviceRecord, time.Time, []cell),
	sorts []func(a, b *engine.DeviceRecord) int, match func(*engine.DeviceRecord) bool) *deviceView {
	t := newTable(e.styles, e.keys, e.now, noun, cols, cells, sameRecord)
	t.sorts = sorts
	t.csvHead = deviceCSVHead
	t.csvRow = deviceCSVRow
	return &deviceView{env: e, id: id, title: tabTitles[id], match: match, table: t}
}

// deviceCSVHead is the header of a device export: `easgate devices
// --output csv`'s columns, and who set the access state.
var deviceCSVHead = []string{"mailbox", "device_id", "device_type", "device_model", "device_os", "user_agent", "access_state",
	"access_reason", "desired_access", "mdm_id", "link", "compliance", "first_sync", "last_sync", "notified_at",
	"notify_count", "reason", "by"}

// deviceCSVRow is one device in an export.
func deviceCSVRow(r *engine.DeviceRecord) []string {
	j := r.JSON()
	var mdm, link, comp string
	if r.Merged() {
		mdm, link, comp = r.MDMID, string(r.Link), string(r.Compliance)
	}
	return []string{j.Mailbox, j.DeviceID, j.DeviceType, j.DeviceModel, j.DeviceOS, j.UserAgent, j.AccessState,
		j.AccessReason, j.DesiredAccess, mdm, link, comp, csvTime(r.FirstSync), csvTime(r.LastSync),
		csvTime(r.Notify.LastSent), strconv.Itoa(r.Notify.Count), j.Reason, byWhom(r)}
}

// byUser orders records as the engine does: mailbox, then device ID,
// ignoring case.
func byUser(a, b *engine.DeviceRecord) int {
	if c := compareFold(a.Mailbox, b.Mailbox); c != 0 {
		return c
	}
	return compareFold(a.DeviceID, b.DeviceID)
}

// byText orders records by a text, ignoring case.
func byText(f func(*engine.DeviceRecord) string) func(a, b *engine.DeviceRecord) int {
	return func(a, b *engine.DeviceRecord) int { return compareFold(f(a), f(b)) }
}

// byTime orders records by a time, oldest first.
func byTime(f func(*engine.DeviceRecord) time.Time) func(a, b *engine.DeviceRecord) int {
	return func(a, b *engine.DeviceRecord) int { return f(a).Compare(f(b)) }
}

// compareFold compares two strings ignoring case.
func compareFold(a, b string) int {
	if strings.EqualFold(a, b) {
		return 0
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// sameRecord reports whether two records are the same partnership, as
// Exchange compares them: ignoring case.
func sameRecord(a, b *engine.DeviceRecord) bool {
	return strings.EqualFold(a.DeviceID, b.DeviceID) && strings.EqualFold(a.Mailbox, b.Mailbox)
}

// take shows this view's part of a device read.
func (v *deviceView) take(msg devicesMsg) tea.Cmd {
	if msg.err != nil {
		v.table.setError(msg.err)
		return nil
	}
	p, ok := msg.parts[v.id]
	if !ok {
		return nil
	}
	return v.table.setData(tableData[engine.DeviceRecord]{rows: msg.rows, search: msg.search, ids: msg.ids,
		base: p.base, order: p.order, spec: p.spec})
}

// Update takes keys and sorted orders.
func (v *deviceView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case devicesMsg:
		return v.take(msg)
	case tea.KeyPressMsg, sortedMsg, filteredMsg:
		return v.table.Update(msg)
	}
	return nil
}

// targets returns the device under the cursor and the selected devices.
func (v *deviceView) targets() (*engine.DeviceRecord, []engine.DeviceRecord) {
	return v.table.current(), v.table.selectedRows()
}

// open opens the detail page of the device under the cursor.
func (v *deviceView) open(e *env) page {
	r := v.table.current()
	if r == nil {
		return nil
	}
	return newDeviceDetail(e, *r)
}

// export writes the rows the view shows to a CSV file.
func (v *deviceView) export() tea.Cmd {
	rows, idx := v.table.exportRows()
	return exportCSV(v.env.exportDir, strings.ToLower(v.title), v.env.now(), deviceCSVHead, rows, idx, deviceCSVRow)
}

// View renders the table.
func (v *deviceView) View() string { return v.table.View() }

// SetSize sizes the table.
func (v *deviceView) SetSize(width, height int) { v.table.SetSize(width, height) }

// Title names the view.
func (v *deviceView) Title() string { return v.title }

// Count is how many devices the view holds.
func (v *deviceView) Count() (int, bool) { return v.table.total(), v.table.loaded }

// Capturing reports whether the filter input is open.
func (v *deviceView) Capturing() bool { return v.table.capturing() }

// Escape clears the filter or the selection.
func (v *deviceView) Escape() bool { return v.table.escape() }

// HelpKeys returns the table's keys.
func (v *deviceView) HelpKeys() ([]key.Binding, []helpGroup) {
	short, groups := v.table.helpKeys()
	if v.table.editing {
		return short, groups
	}
	return append(short, v.env.keys.open), groups
}

// wheel scrolls the table (the mouse wheel).
func (v *deviceView) wheel(n int) { v.table.scroll(n) }

// click moves the cursor to a row.
func (v *deviceView) click(y int) { v.table.click(y) }
