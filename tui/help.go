package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"github.com/charmbracelet/x/ansi"
)

// helpKeys is the help bar's keys: the dialog's while one is open, else the
// view's few and the console's.
func (m *Model) helpKeys() helpKeys {
	k := m.keys
	if m.dialog != nil {
		keys := []key.Binding{k.nextField, k.submit}
		if m.dialog.yesLabel != "" && (m.dialog.slotAt() != slotField) {
			keys = append(keys, k.confirm)
		}
		return helpKeys{short: append(keys, k.deny)}
	}
	if m.showHelp {
		closeHelp := key.NewBinding(key.WithKeys("?"), key.WithHelp("?/esc", "close help"))
		return helpKeys{short: []key.Binding{k.up, k.down, closeHelp, k.quit}}
	}
	v := m.current()
	short, _ := v.HelpKeys()
	if v.Capturing() {
		return helpKeys{short: short}
	}
	if _, ok := v.(deviceTargets); ok && !m.readOnly() {
		short = append(short, k.resend)
	}
	if len(m.stack) > 0 && !containsKey(short, k.back) {
		short = append(short, k.back)
	}
	return helpKeys{short: append(short, k.nextView, k.syncFull, k.help, k.quit)}
}

// containsKey reports whether keys holds b.
func containsKey(keys []key.Binding, b key.Binding) bool {
	for _, x := range keys {
		if x.Help() == b.Help() {
			return true
		}
	}
	return false
}

// helpGroups is every key that works now, grouped: the view's own, the
// device actions where there are devices, switching views, syncing and
// the console's. Keys that change something are left out in read-only
// mode.
func (m *Model) helpGroups() []helpGroup {
	k := m.keys
	v := m.current()
	_, groups := v.HelpKeys()
	ro := m.readOnly()
	if _, ok := v.(deviceTargets); ok {
		dev := helpGroup{title: "Device"}
		if _, ok := v.(opener); ok {
			dev.keys = append(dev.keys, k.open)
		}
		dev.keys = append(dev.keys, k.preview, k.copyID)
		if !ro {
			dev.keys = append(dev.keys, k.resend, k.link, k.unlink, k.allow, k.block, k.clearOver, k.remove, k.wipe)
		}
		groups = append(groups, dev)
	} else if _, ok := v.(opener); ok {
		groups = append(groups, helpGroup{title: "Rows", keys: []key.Binding{k.open}})
	}
	views := helpGroup{title: "Views", keys: []key.Binding{k.nextView, k.prevView}}
	views.keys = append(views.keys, k.views[:]...)
	views.keys = append(views.keys, k.back)
	sync := helpGroup{title: "Sync", keys: []key.Binding{k.syncFull, k.syncQuick, k.dryRun}}
	if !ro {
		sync.keys = append(sync.keys, k.cancel)
	}
	sync.keys = append(sync.keys, k.refresh)
	return append(groups, views, sync, helpGroup{title: "Console", keys: []key.Binding{k.help, k.quit}})
}

// fullHelp lays the help groups out in as many columns as fit in width.
func (m *Model) fullHelp(width int) []string {
	groups := m.helpGroups()
	s := m.styles
	blocks := make([][]string, len(groups))
	colW := 0
	for i, g := range groups {
		kw := 0
		for _, b := range g.keys {
			kw = max(kw, ansi.StringWidth(b.Help().Key))
		}
		lines := []string{s.heading.Render(g.title)}
		for _, b := range g.keys {
			h := b.Help()
			lines = append(lines, s.helpKey.Render(h.Key)+strings.Repeat(" ", kw-ansi.StringWidth(h.Key)+2)+s.muted.Render(h.Desc))
		}
		lines = append(lines, "")
		for _, l := range lines {
			colW = max(colW, ansi.StringWidth(l))
		}
		blocks[i] = lines
	}
	colW += 3
	cols := max(min(width/colW, len(blocks)), 1)
	total := 0
	for _, b := range blocks {
		total += len(b)
	}
	target := (total + cols - 1) / cols
	columns := make([][]string, 0, cols)
	var cur []string
	for _, b := range blocks {
		if len(cur) > 0 && len(cur)+len(b) > target && len(columns) < cols-1 {
			columns = append(columns, cur)
			cur = nil
		}
		cur = append(cur, b...)
	}
	columns = append(columns, cur)
	height := 0
	for _, c := range columns {
		height = max(height, len(c))
	}
	var out []string
	if m.readOnly() {
		out = append(out, s.warn.Render("read-only: keys that change Exchange or the store are off"), "")
	}
	for row := range height {
		var b strings.Builder
		for _, c := range columns {
			cell := ""
			if row < len(c) {
				cell = c[row]
			}
			b.WriteString(cell + strings.Repeat(" ", max(colW-ansi.StringWidth(cell), 0)))
		}
		out = append(out, strings.TrimRight(cut(b.String(), width), " "))
	}
	return out
}
