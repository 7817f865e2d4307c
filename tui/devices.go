package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// deviceView lists device records of one or more engine filters: the
// Unmerged view and the Blocked view are two of them.
type deviceView struct {
	env     *env
	id      viewID
	title   string
	filters []engine.DeviceFilter
	search  func(*engine.DeviceRecord) string
	table   *table[engine.DeviceRecord]
	load    loader
}

// newUnmergedView lists EAS records without an Intune record: who, which
// device, when it appeared and last synced, its access, and whether the
// user was told how to enroll.
func newUnmergedView(e *env) *deviceView {
	cols := []column{
		{title: "User", min: 15, max: 30},
		{title: "Type", min: 7, max: 10, drop: 4},
		{title: "Model", min: 10, weight: 1},
		{title: "OS", min: 8, max: 16, drop: 5},
		{title: "First seen", min: 10, max: 10, drop: 3},
		{title: "Last sync", min: 9, max: 9, drop: 1},
		{title: "Access", min: 11, max: 11},
		{title: "Notified", min: 8, max: 10, drop: 2},
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
	}
	search := func(r *engine.DeviceRecord) string {
		state, _ := accessLabel(r.AccessState)
		return searchText(r.Mailbox, r.DeviceID, r.DeviceType, r.DeviceModel, r.DeviceOS, r.UserAgent, state)
	}
	return &deviceView{
		env: e, id: viewUnmerged, title: "Unmerged",
		filters: []engine.DeviceFilter{engine.FilterUnmerged},
		search:  search,
		table:   newTable(e.styles, e.keys, e.now, "unmerged EAS devices", cols, cells, sameRecord),
	}
}

// newBlockedView lists blocked and quarantined devices with the decision's
// reason in words and since when it holds.
func newBlockedView(e *env) *deviceView {
	cols := []column{
		{title: "User", min: 16, weight: 1},
		{title: "Device", min: 10, weight: 1, drop: 2},
		{title: "State", min: 11, max: 11},
		{title: "Reason", min: 12, weight: 4},
		{title: "Since", min: 10, max: 10, drop: 1},
	}
	cells := func(r *engine.DeviceRecord, now time.Time, out []cell) {
		state, tn := accessLabel(r.AccessState)
		out[0] = cell{text: r.Mailbox}
		out[1] = cell{text: deviceName(r)}
		out[2] = cell{text: state, tone: tn}
		out[3] = cell{text: blockReason(r)}
		out[4] = cell{text: stamp(r.Since, now.Location(), layoutDate)}
	}
	search := func(r *engine.DeviceRecord) string {
		state, _ := accessLabel(r.AccessState)
		return searchText(r.Mailbox, r.DeviceID, deviceName(r), state, blockReason(r))
	}
	return &deviceView{
		env: e, id: viewBlocked, title: "Blocked",
		filters: []engine.DeviceFilter{engine.FilterBlocked, engine.FilterQuarantined},
		search:  search,
		table:   newTable(e.styles, e.keys, e.now, "blocked or quarantined devices", cols, cells, sameRecord),
	}
}

// sameRecord reports whether two records are the same partnership, as
// Exchange compares them: ignoring case.
func sameRecord(a, b *engine.DeviceRecord) bool {
	return strings.EqualFold(a.DeviceID, b.DeviceID) && strings.EqualFold(a.Mailbox, b.Mailbox)
}

// deviceName is a device's type and model in one cell.
func deviceName(r *engine.DeviceRecord) string {
	switch {
	case r.DeviceType == "":
		return r.DeviceModel
	case r.DeviceModel == "" || r.DeviceModel == r.DeviceType:
		return r.DeviceType
	}
	return r.DeviceType + " " + r.DeviceModel
}

// blockReason is why a device is blocked or quarantined, in words: the
// policy's reason, or Exchange's own when easgate holds no decision.
func blockReason(r *engine.DeviceRecord) string {
	if r.Decision.Reason != "" {
		return r.Decision.Reason
	}
	if r.AccessReason != "" {
		return "set by Exchange (" + r.AccessReason + ")"
	}
	return "set by Exchange"
}

// notifiedCell says how often and how long ago the user was mailed.
func notifiedCell(n engine.NotifyState, now time.Time) cell {
	if n.Count == 0 {
		if n.LastError != "" {
			return cell{text: "failed", tone: toneBad}
		}
		return cell{text: "never", tone: toneMuted}
	}
	return cell{text: fmt.Sprintf("%d× %s", n.Count, age(now, n.LastSent))}
}

// Init loads the view's devices.
func (v *deviceView) Init() tea.Cmd { return v.Refresh() }

// Refresh re-reads the view's devices.
func (v *deviceView) Refresh() tea.Cmd { return v.load.start(v.fetch) }

// fetch is the command that reads the view's devices.
func (v *deviceView) fetch() tea.Cmd { return fetchDevices(v.env, v.id, v.search, v.filters...) }

// Update takes the view's devices when they arrive and keys when active.
func (v *deviceView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case devicesMsg:
		if msg.view != v.id {
			return nil
		}
		if msg.err != nil {
			v.table.setError(msg.err)
		} else {
			v.table.setRows(msg.rows, msg.search)
		}
		return v.load.done(v.fetch)
	case tea.KeyPressMsg:
		return v.table.Update(msg)
	}
	return nil
}

// View renders the table.
func (v *deviceView) View() string { return v.table.View() }

// SetSize sizes the table.
func (v *deviceView) SetSize(width, height int) { v.table.SetSize(width, height) }

// Title names the view.
func (v *deviceView) Title() string { return v.title }

// Count is how many devices the view holds.
func (v *deviceView) Count() (int, bool) { return len(v.table.rows), v.table.loaded }

// Capturing reports whether the filter input is open.
func (v *deviceView) Capturing() bool { return v.table.capturing() }

// HelpKeys returns the table's keys.
func (v *deviceView) HelpKeys() ([]key.Binding, [][]key.Binding) { return v.table.helpKeys() }
