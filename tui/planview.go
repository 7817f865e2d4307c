package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"easgate/engine"
)

// planData is a plan as the Plan view shows it: one row per change,
// notification and withheld change, with counts per action.
type planData struct {
	plan   *engine.Plan
	held   bool // held by the safety brake (else a dry run's plan)
	items  []planItem
	search []string
	counts planCounts
}

// planItem is one thing a plan would do.
type planItem struct {
	action  string
	blocks  bool // can take mail away from a device
	mailbox string
	device  string
	reason  string
	tone    tone
}

// planCounts are a plan's changes per action.
type planCounts struct {
	allowAdd, allowRemove, blockAdd, blockRemove, mails, withheld, newBlocks int
}

// newPlanData turns a plan into rows; it runs in a command, since a plan
// may hold 150,000 changes.
func newPlanData(p *engine.Plan, held bool) *planData {
	d := &planData{plan: p, held: held}
	n := len(p.Changes) + len(p.Notifications) + len(p.Withheld)
	d.items = make([]planItem, 0, n)
	d.search = make([]string, 0, n)
	addChange := func(c *engine.Change, withheld bool) {
		it := planItem{mailbox: c.Mailbox, device: c.DeviceID, reason: c.Reason, blocks: c.Blocks()}
		sign := "+"
		if c.Op == engine.OpRemove {
			sign = "−"
		}
		it.action = sign + " " + string(c.List)
		switch {
		case withheld:
			it.action, it.tone = "withheld "+it.action, toneMuted
			d.counts.withheld++
		case c.List == engine.ListAllowed && c.Op == engine.OpAdd:
			d.counts.allowAdd++
		case c.List == engine.ListAllowed:
			d.counts.allowRemove++
		case c.Op == engine.OpAdd:
			d.counts.blockAdd++
		default:
			d.counts.blockRemove++
		}
		if it.blocks && !withheld {
			it.action, it.tone = "⚠ "+it.action, toneBad
			d.counts.newBlocks++
		}
		if c.Orphan {
			it.reason += " (orphaned entry)"
		}
		d.items = append(d.items, it)
		d.search = append(d.search, searchText(it.action, it.mailbox, it.device, it.reason))
	}
	for i := range p.Changes {
		addChange(&p.Changes[i], false)
	}
	for i := range p.Notifications {
		n := &p.Notifications[i]
		what := "first notice"
		if n.Resend {
			what = "reminder"
		}
		it := planItem{action: "✉ mail", mailbox: n.To, device: n.DeviceID,
			reason: fmt.Sprintf("%s: %s will be %s (%s)", what, n.DeviceID, accessFuture(n.Access), n.Reason), tone: toneAccent}
		d.counts.mails++
		d.items = append(d.items, it)
		d.search = append(d.search, searchText(it.action, it.mailbox, it.device, it.reason))
	}
	for i := range p.Withheld {
		addChange(&p.Withheld[i], true)
	}
	return d
}

// accessFuture says what will happen to a device in words.
func accessFuture(a engine.Access) string {
	switch a {
	case engine.AccessAllow:
		return "allowed"
	case engine.AccessBlock:
		return "blocked"
	case engine.AccessQuarantine:
		return "quarantined"
	case engine.AccessNone:
		return "left to Exchange"
	}
	return string(a)
}

// planView is the Plan review: a plan the safety brake holds, or the plan
// of a dry run, with counts per action and every change with its reason.
// A held plan can be approved (A) or discarded (X).
type planView struct {
	env    *env
	held   *planData
	dry    *planData
	show   *planData // the one on screen
	table  *table[planItem]
	width  int
	height int
}

// newPlanView returns the Plan view.
func newPlanView(e *env) *planView {
	cols := []column{
		{title: "Action", min: 10, max: 12},
		{title: "Mailbox", min: 14, weight: 2},
		{title: "Device ID", min: 10, weight: 1, drop: 1},
		{title: "Reason", min: 16, weight: 4},
	}
	cells := func(it *planItem, _ time.Time, out []cell) {
		out[0] = cell{text: it.action, tone: it.tone}
		out[1] = cell{text: it.mailbox}
		out[2] = cell{text: it.device}
		out[3] = cell{text: it.reason}
	}
	same := func(a, b *planItem) bool { return *a == *b }
	t := newTable(e.styles, e.keys, e.now, "changes", cols, cells, same)
	text := func(f func(*planItem) string) func(a, b *planItem) int {
		return func(a, b *planItem) int { return compareFold(f(a), f(b)) }
	}
	t.sorts = []func(a, b *planItem) int{
		text(func(i *planItem) string { return i.action }), text(func(i *planItem) string { return i.mailbox }),
		text(func(i *planItem) string { return i.device }), text(func(i *planItem) string { return i.reason }),
	}
	t.csvHead = planCSVHead
	return &planView{env: e, table: t}
}

// planCSVHead is the header of a plan export.
var planCSVHead = []string{"action", "blocks", "mailbox", "device_id", "reason"}

// planCSVRow is one plan item in an export.
func planCSVRow(it *planItem) []string {
	return []string{strings.TrimPrefix(it.action, "⚠ "), fmt.Sprint(it.blocks), it.mailbox, it.device, it.reason}
}

// setHeld shows a plan the brake holds (nil: none is held any more).
func (v *planView) setHeld(d *planData) tea.Cmd {
	v.held = d
	if d != nil || v.show == nil || v.show.held {
		return v.showPlan(d)
	}
	return nil
}

// clearHeld notes that no plan is held any more.
func (v *planView) clearHeld() tea.Cmd {
	if v.held == nil {
		return nil
	}
	v.held = nil
	if v.show != nil && v.show.held {
		return v.showPlan(v.dry)
	}
	return nil
}

// setDryRun shows the plan of a dry run.
func (v *planView) setDryRun(d *planData) tea.Cmd {
	v.dry = d
	return v.showPlan(d)
}

// showPlan puts a plan on screen.
func (v *planView) showPlan(d *planData) tea.Cmd {
	v.show = d
	var cmd tea.Cmd
	if d == nil {
		cmd = v.table.setRows(nil, nil)
	} else {
		cmd = v.table.setRows(d.items, d.search)
	}
	v.layout()
	return cmd
}

// heldPlan is the held plan on screen, or nil.
func (v *planView) heldPlan() *engine.Plan {
	if v.show == nil || !v.show.held {
		return nil
	}
	return v.show.plan
}

// shownID is the ID of the held plan the view holds, if any.
func (v *planView) shownID() string {
	if v.held == nil {
		return ""
	}
	return v.held.plan.ID
}

// summary is the lines above the table.
func (v *planView) summary() []string {
	s := v.env.styles
	now := v.env.now()
	d := v.show
	if d == nil {
		return v.wrapped([]string{
			s.heading.Render("No plan to review"),
			"The safety brake holds no plan. d runs a dry run: it shows here what a sync would do.",
		})
	}
	p := d.plan
	kind := "Dry-run plan"
	if d.held {
		kind = "Held plan"
	}
	first := s.heading.Render(kind) + fmt.Sprintf(" %s · %s sync · computed %s (%s) at store serial %d",
		clean(p.ID), p.Kind, stamp(p.Computed, now.Location(), layoutDateTime), ago(now, p.Computed), p.Serial)
	var second string
	switch {
	case d.held && p.Brake != nil:
		second = s.warn.Render("⚠ safety brake: "+clean(p.Brake.Reason)) + " · "
	case d.held:
		second = s.warn.Render("⚠ held by the safety brake") + " · "
	}
	if d.held {
		if v.env.shared.isReadOnly() {
			second += s.muted.Render("read-only: approving and discarding are off")
		} else {
			second += "A approve (applies it) · X discard"
		}
	} else {
		second = s.muted.Render("nothing was applied; s runs a full sync that would apply it")
	}
	c := d.counts
	third := fmt.Sprintf("allowed list +%s −%s · blocked list +%s −%s · %s mails · %s withheld · ",
		count(c.allowAdd), count(c.allowRemove), count(c.blockAdd), count(c.blockRemove), count(c.mails), count(c.withheld)) +
		s.bad.Render(count(c.newBlocks)+" new blocks")
	lines := []string{first, second, third}
	if v.held != nil && v.dry != nil {
		lines = append(lines, s.muted.Render("v switches between the held plan and the dry run's"))
	}
	return v.wrapped(lines)
}

// wrapped breaks the summary's lines at the view's width.
func (v *planView) wrapped(lines []string) []string {
	var out []string
	for _, l := range lines {
		out = append(out, strings.Split(ansi.Wrap(l, max(v.width, 20), " "), "\n")...)
	}
	return out
}

// layout gives the table what the summary leaves.
func (v *planView) layout() {
	v.table.SetSize(v.width, max(v.height-len(v.summary()), 3))
}

// Update takes keys.
func (v *planView) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		if !v.table.capturing() && key.Matches(msg, v.env.keys.switchPlan) && v.held != nil && v.dry != nil {
			if v.show == v.held {
				return v.showPlan(v.dry)
			}
			return v.showPlan(v.held)
		}
		return v.table.Update(msg)
	case sortedMsg, filteredMsg:
		return v.table.Update(msg)
	}
	return nil
}

// export writes the plan's rows to a CSV file.
func (v *planView) export() tea.Cmd {
	rows, idx := v.table.exportRows()
	return exportCSV(v.env.exportDir, "plan", v.env.now(), planCSVHead, rows, idx, planCSVRow)
}

// View renders the summary and the table.
func (v *planView) View() string {
	sum := v.summary()
	for i, l := range sum {
		sum[i] = cut(l, v.width)
	}
	if v.show == nil {
		for len(sum) < v.height {
			sum = append(sum, "")
		}
		return strings.Join(sum[:v.height], "\n")
	}
	return strings.Join(sum, "\n") + "\n" + v.table.View()
}

// SetSize sizes the view.
func (v *planView) SetSize(width, height int) {
	v.width, v.height = width, height
	v.layout()
}

// Title names the view.
func (v *planView) Title() string { return tabTitles[tabPlan] }

// Count is how many rows the plan on screen has.
func (v *planView) Count() (int, bool) {
	if v.show == nil {
		return -1, true
	}
	return len(v.show.items), true
}

// Capturing reports whether the filter input is open.
func (v *planView) Capturing() bool { return v.table.capturing() }

// Escape clears the filter.
func (v *planView) Escape() bool { return v.table.escape() }

// HelpKeys returns the table's keys and the plan's.
func (v *planView) HelpKeys() ([]key.Binding, []helpGroup) {
	short, groups := v.table.helpKeys()
	if v.table.editing {
		return short, groups
	}
	k := v.env.keys
	plan := helpGroup{title: "Plan"}
	if v.heldPlan() != nil && !v.env.shared.isReadOnly() {
		plan.keys = append(plan.keys, k.approve, k.discard)
		short = append(short, k.approve, k.discard)
	}
	plan.keys = append(plan.keys, k.dryRun)
	if v.held != nil && v.dry != nil {
		plan.keys = append(plan.keys, k.switchPlan)
	}
	return short, append(groups, plan)
}

// wheel scrolls the table (the mouse wheel).
func (v *planView) wheel(n int) { v.table.scroll(n) }

// click moves the cursor to a row below the summary.
func (v *planView) click(y int) { v.table.click(y - len(v.summary())) }
