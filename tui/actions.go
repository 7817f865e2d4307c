package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"easgate/engine"
)

// previewMsg carries a rendered notification: for a resend (send: the
// devices it goes to) or just to look at.
type previewMsg struct {
	devices []engine.DeviceRecord
	send    bool
	preview *engine.MailPreview
	err     error
}

// candidatesMsg carries the MDM records a device could be linked to.
type candidatesMsg struct {
	rec   engine.DeviceRecord
	cands []engine.Candidate
	err   error
}

// resentMsg carries the outcome of a resend.
type resentMsg struct {
	results []engine.NotifyResult
	err     error
}

// exporter is a view that exports its rows to CSV.
type exporter interface {
	export() tea.Cmd
}

// readPreview renders the notification of the first device.
func readPreview(e *env, recs []engine.DeviceRecord, send bool) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		p, err := e.api.Preview(ctx, recs[0].Key())
		if err != nil {
			err = fmt.Errorf("preview the notification of %s: %w", recs[0].Key(), err)
		}
		return previewMsg{devices: recs, send: send, preview: p, err: err}
	}
}

// readCandidates reads the MDM records a device could be linked to.
func readCandidates(e *env, r engine.DeviceRecord) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		defer cancel()
		cs, err := e.api.Candidates(ctx, r.Key())
		if err != nil {
			err = fmt.Errorf("read the MDM records %s could be linked to: %w", r.Key(), err)
		}
		return candidatesMsg{rec: r, cands: cs, err: err}
	}
}

// resend sends the notification to the users of devices.
func resend(e *env, recs []engine.DeviceRecord, actor string) tea.Cmd {
	keys := make([]engine.DeviceKey, len(recs))
	for i := range recs {
		keys[i] = recs[i].Key()
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(e.ctx, actionTimeout)
		defer cancel()
		res, err := e.api.Resend(ctx, engine.ResendRequest{Devices: keys, Actor: actor})
		if err != nil {
			err = fmt.Errorf("resend the notification: %w", err)
		}
		return resentMsg{results: res, err: err}
	}
}

// deviceAction acts on a device key in a view of devices. It reports
// whether k was a device action key.
func (m *Model) deviceAction(k tea.KeyPressMsg, v deviceTargets) (tea.Cmd, bool) {
	keys := m.keys
	actions := []key.Binding{keys.resend, keys.preview, keys.link, keys.unlink, keys.allow, keys.block,
		keys.clearOver, keys.remove, keys.wipe, keys.copyID}
	var hit *key.Binding
	for i := range actions {
		if key.Matches(k, actions[i]) {
			hit = &actions[i]
			break
		}
	}
	if hit == nil {
		return nil, false
	}
	cur, sel := v.targets()
	if cur == nil {
		m.setNote(hit.Help().Key+" ("+hit.Help().Desc+"): no device under the cursor", levelWarn)
		return nil, true
	}
	changes := !key.Matches(k, keys.preview) && !key.Matches(k, keys.copyID)
	if changes && m.readOnly() {
		m.disabled(*hit, "the console is read-only")
		return nil, true
	}
	many := sel
	if len(many) == 0 {
		many = []engine.DeviceRecord{*cur}
	}
	switch {
	case key.Matches(k, keys.copyID):
		m.setNote("copied device ID "+clean(cur.DeviceID)+" to the clipboard (OSC 52)", levelInfo)
		return tea.SetClipboard(cur.DeviceID), true
	case key.Matches(k, keys.preview):
		m.setNote("rendering the notification of "+clean(cur.Mailbox)+"…", levelInfo)
		return readPreview(m.env, []engine.DeviceRecord{*cur}, false), true
	case key.Matches(k, keys.resend):
		m.setNote("rendering the notification first…", levelInfo)
		return readPreview(m.env, many, true), true
	case key.Matches(k, keys.link):
		if cur.Merged() {
			m.disabled(*hit, fmt.Sprintf("%s is merged with MDM record %s already (%s); unlink it first",
				clean(cur.DeviceID), clean(cur.MDMID), linkWords(cur.Link)))
			return nil, true
		}
		m.setNote("reading the MDM records of "+clean(cur.Mailbox)+"…", levelInfo)
		return readCandidates(m.env, *cur), true
	case key.Matches(k, keys.unlink):
		if cur.Link != engine.LinkManual {
			why := "it is not merged"
			if cur.Merged() {
				why = "it was merged by EAS device ID, not by hand"
			}
			m.disabled(*hit, clean(cur.DeviceID)+" has no link to remove: "+why)
			return nil, true
		}
		m.dialog = m.unlinkDialog(*cur)
	case key.Matches(k, keys.allow):
		m.dialog = m.overrideDialog(many, engine.AccessAllow)
	case key.Matches(k, keys.block):
		m.dialog = m.overrideDialog(many, engine.AccessBlock)
	case key.Matches(k, keys.clearOver):
		var over []engine.DeviceRecord
		for _, r := range many {
			if r.Decision.Code == engine.ReasonAdminOverride {
				over = append(over, r)
			}
		}
		if len(over) == 0 {
			m.disabled(*hit, "no override on "+clean(cur.DeviceID)+": its access follows the policy")
			return nil, true
		}
		m.dialog = m.clearDialog(over)
	case key.Matches(k, keys.remove):
		m.dialog = m.removeDialog(*cur)
	case key.Matches(k, keys.wipe):
		m.dialog = m.wipeDialog(*cur)
	}
	return nil, true
}

// disabled says on the status line why a key does nothing now.
func (m *Model) disabled(b key.Binding, why string) {
	m.setNote(fmt.Sprintf("%s (%s) is off: %s", b.Help().Key, strings.TrimSuffix(b.Help().Desc, " ⚠"), why), levelWarn)
}

// deviceList names up to a few devices, one per line.
func deviceList(recs []engine.DeviceRecord) []string {
	const most = 5
	var out []string
	for i, r := range recs {
		if i == most {
			out = append(out, fmt.Sprintf("  … and %d more", len(recs)-most))
			break
		}
		out = append(out, "  "+clean(r.Mailbox)+" · "+clean(r.DeviceID)+" · "+clean(deviceName(&r)))
	}
	return out
}

// devicesWord is "1 device" or "3 devices".
func devicesWord(n int) string {
	if n == 1 {
		return "1 device"
	}
	return count(n) + " devices"
}

// previewDialog shows a rendered notification; for a resend it asks to
// send it.
func (m *Model) previewDialog(msg previewMsg) *dialog {
	p := msg.preview
	d := newDialog(m.styles, m.keys, "Enrollment notification", false)
	if msg.send {
		d.title = "Resend the enrollment notification to " + devicesWord(len(msg.devices)) + "' users"
		if len(msg.devices) == 1 {
			d.title = "Resend the enrollment notification"
		}
		d.yesLabel, d.noLabel = "Send", "Cancel"
		d.body = append(d.body, "It goes now, whatever the resend schedule says, to the users of:")
		d.body = append(d.body, deviceList(msg.devices)...)
		if len(msg.devices) > 1 {
			d.body = append(d.body, "", "The preview shows the first one's mail.")
		}
		d.body = append(d.body, "")
		recs := msg.devices
		d.onYes = func(*dialog) (tea.Cmd, error) {
			m.setNote("sending "+devicesWord(len(recs))+"' notifications…", levelInfo)
			return resend(m.env, recs, m.actor), nil
		}
	}
	d.body = append(d.body, "To: "+clean(p.To), "Subject: "+clean(p.Subject), "")
	for _, l := range strings.Split(strings.ReplaceAll(p.Text, "\r\n", "\n"), "\n") {
		d.body = append(d.body, clean(l))
	}
	return d.start()
}

// linkDialog offers the MDM records a device could be linked to.
func (m *Model) linkDialog(msg candidatesMsg) *dialog {
	r := msg.rec
	d := newDialog(m.styles, m.keys, "Link "+clean(r.DeviceID)+" to its Intune record", false)
	d.body = []string{
		clean(r.Mailbox) + " · " + clean(deviceName(&r)) + " · " + clean(r.DeviceOS),
		"Pick the MDM record that is this device (★ the planner's suggestion). easgate decides its access again at once.",
	}
	for i := range msg.cands {
		mark := "  "
		if msg.cands[i].Suggested {
			mark = "★ "
		}
		d.items = append(d.items, mark+candidateText(&msg.cands[i]))
	}
	d.yesLabel, d.noLabel = "Link", "Cancel"
	cands := msg.cands
	d.onYes = func(d *dialog) (tea.Cmd, error) {
		c := cands[d.item]
		req := engine.LinkRequest{Device: r.Key(), MDMID: c.MDM.ID, Actor: m.actor}
		return action(m.env, "linked "+clean(r.DeviceID)+" to MDM record "+clean(c.MDM.ID), func(ctx context.Context) error {
			if err := m.env.api.Link(ctx, req); err != nil {
				return fmt.Errorf("link %s to %s: %w", req.Device, req.MDMID, err)
			}
			return nil
		}), nil
	}
	return d.start()
}

// unlinkDialog asks to remove a manual link.
func (m *Model) unlinkDialog(r engine.DeviceRecord) *dialog {
	d := newDialog(m.styles, m.keys, "Unlink "+clean(r.DeviceID)+" from MDM record "+clean(r.MDMID)+"?", false)
	d.body = []string{
		clean(r.Mailbox) + " · " + clean(deviceName(&r)),
		"The device becomes unmerged again, and easgate decides its access at once: an unmanaged device may lose mail.",
	}
	d.yesLabel = "Unlink"
	req := engine.DeviceRequest{Device: r.Key(), Actor: m.actor}
	d.onYes = func(*dialog) (tea.Cmd, error) {
		return action(m.env, "unlinked "+clean(r.DeviceID), func(ctx context.Context) error {
			if err := m.env.api.Unlink(ctx, req); err != nil {
				return fmt.Errorf("unlink %s: %w", req.Device, err)
			}
			return nil
		}), nil
	}
	return d.start()
}

// overrideDialog asks for an override's expiry and note, and confirms it.
// Blocking is dangerous.
func (m *Model) overrideDialog(recs []engine.DeviceRecord, access engine.Access) *dialog {
	verb, done := "Allow", "allowed"
	if access == engine.AccessBlock {
		verb, done = "Block", "blocked"
	}
	d := newDialog(m.styles, m.keys, verb+" "+devicesWord(len(recs))+" by hand", access == engine.AccessBlock)
	d.body = append(deviceList(recs), "",
		"An override beats the policy until it expires (or c clears it), is applied at once and is recorded in the journal.")
	d.fields = []*textField{
		{label: "Until", hint: "empty: until cleared · 90m, 36h, 7d, 2w, 2026-04-01, 2026-04-01 18:00"},
		{label: "Note", hint: "why, for the journal"},
	}
	d.yesLabel, d.noLabel = verb, "Cancel"
	d.onYes = func(d *dialog) (tea.Cmd, error) {
		until, err := parseUntil(d.fields[0].value, m.env.now())
		if err != nil {
			return nil, err
		}
		note := strings.TrimSpace(d.fields[1].value)
		text := done + " " + devicesWord(len(recs)) + " by hand"
		if !until.IsZero() {
			text += " until " + stamp(until, m.env.now().Location(), layoutDateTime)
		}
		return action(m.env, text, func(ctx context.Context) error {
			var errs []error
			for _, r := range recs {
				err := m.env.api.Override(ctx, engine.OverrideRequest{Device: r.Key(), Access: access, Until: until,
					Note: note, Actor: m.actor})
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", strings.ToLower(verb), r.Key(), err))
				}
			}
			return errors.Join(errs...)
		}), nil
	}
	return d.start()
}

// clearDialog asks to clear overrides.
func (m *Model) clearDialog(recs []engine.DeviceRecord) *dialog {
	d := newDialog(m.styles, m.keys, "Clear the override of "+devicesWord(len(recs))+"?", false)
	d.body = append(deviceList(recs), "", "Their access follows the policy again, at once.")
	d.yesLabel = "Clear"
	d.onYes = func(*dialog) (tea.Cmd, error) {
		return action(m.env, "cleared the override of "+devicesWord(len(recs)), func(ctx context.Context) error {
			var errs []error
			for _, r := range recs {
				if err := m.env.api.Override(ctx, engine.OverrideRequest{Device: r.Key(), Access: engine.AccessNone,
					Actor: m.actor}); err != nil {
					errs = append(errs, fmt.Errorf("clear the override of %s: %w", r.Key(), err))
				}
			}
			return errors.Join(errs...)
		}), nil
	}
	return d.start()
}

// removeDialog asks to remove a partnership: dangerous.
func (m *Model) removeDialog(r engine.DeviceRecord) *dialog {
	d := newDialog(m.styles, m.keys, "Remove the partnership of "+clean(r.DeviceID)+"?", true)
	d.body = []string{
		clean(r.Mailbox) + " · " + clean(deviceName(&r)),
		"",
		"Remove-MobileDevice deletes the partnership from Exchange. The device loses mail until it syncs again, " +
			"which makes a new partnership that easgate then decides on.",
	}
	d.yesLabel = "Remove"
	req := engine.DeviceRequest{Device: r.Key(), Actor: m.actor}
	d.onYes = func(*dialog) (tea.Cmd, error) {
		do := action(m.env, "removed the partnership of "+clean(r.DeviceID), func(ctx context.Context) error {
			if err := m.env.api.RemovePartnership(ctx, req); err != nil {
				return fmt.Errorf("remove the partnership of %s: %w", req.Device, err)
			}
			return nil
		})
		return func() tea.Msg {
			msg := do().(actionDoneMsg)
			if msg.err == nil {
				msg.gone = req.Device
			}
			return msg
		}, nil
	}
	return d.start()
}

// wipeDialog asks to wipe a device, or only its mail account: dangerous.
func (m *Model) wipeDialog(r engine.DeviceRecord) *dialog {
	d := newDialog(m.styles, m.keys, "Wipe "+clean(r.DeviceID)+"?", true)
	d.body = []string{
		clean(r.Mailbox) + " · " + clean(deviceName(&r)),
		"",
		"Clear-MobileDevice makes the device wipe itself the next time it syncs. It cannot be undone.",
	}
	d.choices = []string{"only the mail account on it (account-only wipe)", "the whole device: a factory reset, all its data lost"}
	d.yesLabel = "Wipe"
	d.onYes = func(d *dialog) (tea.Cmd, error) {
		req := engine.WipeRequest{Device: r.Key(), AccountOnly: d.choice == 0, Actor: m.actor}
		what := "a full wipe"
		if req.AccountOnly {
			what = "an account-only wipe"
		}
		return action(m.env, "requested "+what+" of "+clean(r.DeviceID), func(ctx context.Context) error {
			if err := m.env.api.Wipe(ctx, req); err != nil {
				return fmt.Errorf("wipe %s: %w", req.Device, err)
			}
			return nil
		}), nil
	}
	return d.start()
}

// approveDialog asks to apply the held plan: dangerous.
func (m *Model) approveDialog(p *engine.Plan) *dialog {
	d := newDialog(m.styles, m.keys, "Approve plan "+clean(p.ID)+"?", true)
	d.body = []string{
		fmt.Sprintf("It applies exactly this plan: %s changes, %s of them new blocks, and %s notifications.",
			count(len(p.Changes)), count(p.NewBlocks()), count(len(p.Notifications))),
	}
	if p.Brake != nil {
		d.body = append(d.body, "The safety brake held it: "+clean(p.Brake.Reason)+".")
	}
	d.body = append(d.body, "", "If the store has changed since the plan was computed, the engine refuses it (stale plan).")
	d.yesLabel = "Approve"
	d.onYes = func(*dialog) (tea.Cmd, error) { return m.startApprove(p), nil }
	return d.start()
}

// discardDialog asks to drop the held plan.
func (m *Model) discardDialog(p *engine.Plan) *dialog {
	d := newDialog(m.styles, m.keys, "Discard plan "+clean(p.ID)+"?", false)
	d.body = []string{"Nothing of it is applied; the next sync plans afresh (and may be held again)."}
	d.yesLabel = "Discard"
	req := engine.PlanRequest{PlanID: p.ID, Actor: m.actor}
	d.onYes = func(*dialog) (tea.Cmd, error) {
		return action(m.env, "discarded plan "+clean(p.ID), func(ctx context.Context) error {
			if err := m.env.api.Discard(ctx, req); err != nil {
				return fmt.Errorf("discard plan %s: %w", req.PlanID, err)
			}
			return nil
		}), nil
	}
	return d.start()
}

// resendSummary says how a resend went.
func resendSummary(res []engine.NotifyResult) (string, level) {
	ok, failed := 0, 0
	var first string
	for _, r := range res {
		if r.OK {
			ok++
			continue
		}
		failed++
		if first == "" {
			first = string(r.Device) + ": " + r.Error
		}
	}
	switch {
	case failed == 0 && ok == 1:
		return "notification sent to " + res[0].To, levelInfo
	case failed == 0:
		return fmt.Sprintf("%s notifications sent", count(ok)), levelInfo
	}
	return fmt.Sprintf("%s notifications sent, %s failed (%s)", count(ok), count(failed), first), levelError
}
