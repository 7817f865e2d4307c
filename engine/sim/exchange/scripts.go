package exchange

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"easgate/engine/sim/org"
)

// defaultResultSize is how many objects Exchange's Get- cmdlets return
// without -ResultSize.
const defaultResultSize = 1000

const warnResultSize = `By default, only the first 1000 items are returned. Use the ResultSize parameter to specify the number of items returned. To return all items, specify "-ResultSize Unlimited". Be aware that, depending on the actual number of items, returning all items can take a long time and consume a large amount of memory. Also, we don't recommend storing the results in a variable. Instead, pipe the results to another task or script to perform batch updates.`

// Lines the easgate scripts write. Keys are the Exchange property names
// the script copies, and lower-case names for what the script computes.
type (
	beginLine struct {
		T      string `json:"t"`
		Script string `json:"script"`
	}
	orgLine struct {
		T                   string   `json:"t"`
		AdminMailRecipients []string `json:"AdminMailRecipients"`
		DefaultAccessLevel  string   `json:"DefaultAccessLevel"`
		UserMailInsert      string   `json:"UserMailInsert"`
	}
	ruleLine struct {
		T              string `json:"t"`
		Name           string `json:"Name"`
		Characteristic string `json:"Characteristic"`
		QueryString    string `json:"QueryString"`
		AccessLevel    string `json:"AccessLevel"`
	}
	deviceLine struct {
		T                       string  `json:"t"`
		MailboxDN               string  `json:"mailbox_dn"`
		Identity                string  `json:"Identity"`
		DeviceID                string  `json:"DeviceId"`
		DeviceType              string  `json:"DeviceType"`
		DeviceModel             string  `json:"DeviceModel"`
		DeviceOS                string  `json:"DeviceOS"`
		DeviceUserAgent         string  `json:"DeviceUserAgent"`
		ClientType              string  `json:"ClientType"`
		DeviceAccessState       string  `json:"DeviceAccessState"`
		DeviceAccessStateReason string  `json:"DeviceAccessStateReason"`
		FirstSyncTime           *string `json:"FirstSyncTime"`
		WhenChangedUTC          *string `json:"WhenChangedUTC"`
	}
	mailboxLine struct {
		T                          string   `json:"t"`
		DistinguishedName          string   `json:"DistinguishedName"`
		PrimarySmtpAddress         string   `json:"PrimarySmtpAddress"`
		UserPrincipalName          string   `json:"UserPrincipalName"`
		EmailAddresses             []string `json:"EmailAddresses"`
		ActiveSyncAllowedDeviceIDs []string `json:"ActiveSyncAllowedDeviceIDs"`
		ActiveSyncBlockedDeviceIDs []string `json:"ActiveSyncBlockedDeviceIDs"`
	}
	statLine struct {
		T               string  `json:"t"`
		Identity        string  `json:"Identity"`
		LastSuccessSync *string `json:"LastSuccessSync"`
	}
	inventoryEnd struct {
		T         string `json:"t"`
		Devices   int    `json:"devices"`
		Mailboxes int    `json:"mailboxes"`
	}
	resultLine struct {
		T     string `json:"t"`
		ID    string `json:"id"`
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}
	applyEnd struct {
		T     string `json:"t"`
		Edits int    `json:"edits"`
	}
	probeLine struct {
		T        string   `json:"t"`
		Server   string   `json:"server"`
		PS       string   `json:"ps"`
		Exchange *string  `json:"exchange"`
		Cmdlets  []string `json:"cmdlets"`
	}
	endLine struct {
		T string `json:"t"`
	}
)

// lines collects a script's stdout: one compact JSON object per line, every
// character outside printable ASCII escaped as \uXXXX (the scripts'
// function J), each line ending in CRLF as [Console]::Out.WriteLine does
// on Windows.
type lines struct{ bytes.Buffer }

func (l *lines) add(v any) {
	j, err := json.Marshal(v)
	if err != nil {
		return
	}
	for _, r := range string(j) {
		if r >= 0x20 && r < 0x7f {
			l.WriteByte(byte(r))
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(l, `\u%04x`, u)
		}
	}
	l.WriteString("\r\n")
}

// flush writes the collected lines to the script's stdout, in pieces the
// size of a pipe's buffer so a slow reader holds the writer back.
// emit charges d for one object, adds its line, and writes the lines
// out once they fill a chunk: a streaming script's output.
func (r *run) emit(out *lines, v any, d time.Duration) *psError {
	if !r.meter.charge(r.ctx, d, 1) {
		return errTerminated
	}
	out.add(v)
	if out.Len() >= flushAt {
		return r.flush(out)
	}
	return nil
}

// cost is the cost model, or a zero one when it is off.
func (h *Host) cost() *Cost {
	if h.cfg.Cost == nil {
		return &Cost{}
	}
	return h.cfg.Cost
}

func (r *run) flush(l *lines) *psError {
	for b := l.Bytes(); len(b) > 0; {
		n := min(len(b), 64<<10)
		if _, err := r.stdout.Write(b[:n]); err != nil {
			return errTerminated
		}
		b = b[n:]
	}
	l.Reset()
	return nil
}

func isoTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05Z")
	return &s
}

// nonNil returns s, or an empty list for nil: ConvertTo-Json writes [] for
// the scripts' empty string arrays.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// escapeRDN escapes an attribute value for a distinguished name (RFC 4514).
func escapeRDN(v string) string {
	var b strings.Builder
	for i, c := range v {
		switch {
		case strings.ContainsRune(`,+"\<>;=`, c), c == '#' && i == 0, c == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
			b.WriteRune(c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func (h *Host) mailboxDN(u *org.User) string {
	return "CN=" + escapeRDN(u.DisplayName) + ",OU=Users,DC=" + strings.ReplaceAll(h.cfg.Org.Domain, ".", ",DC=")
}

// mobileDevice is Get-MobileDevice's line for one partnership. The caller
// holds the organisation's lock.
func (h *Host) mobileDevice(u *org.User, p *org.Partnership) deviceLine {
	o := h.cfg.Org
	state, reason := o.AccessOf(u, p)
	return deviceLine{T: "device", MailboxDN: h.mailboxDN(u), Identity: o.Identity(u, p), DeviceID: p.DeviceID,
		DeviceType: p.DeviceType, DeviceModel: p.DeviceModel, DeviceOS: p.DeviceOS, DeviceUserAgent: p.UserAgent,
		ClientType: p.ClientType, DeviceAccessState: state, DeviceAccessStateReason: reason,
		FirstSyncTime: isoTime(p.FirstSync), WhenChangedUTC: isoTime(p.WhenChanged)}
}

func (h *Host) mailboxIdentity(u *org.User) string {
	return h.cfg.Org.Domain + "/Users/" + u.DisplayName
}

// inventory performs inventory/1: organisation settings, device access
// rules, every device (or those first synced in the day before since),
// the CAS mailboxes holding them, and their last successful sync. It
// reads the organisation under its lock, then streams the lines as the
// cmdlets would produce them, charging the cost model as it goes.
func (h *Host) inventory(r *run) *psError {
	o := h.cfg.Org
	var since time.Time
	if r.payload.Since != nil && *r.payload.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, *r.payload.Since)
		if err != nil {
			return &psError{message: fmt.Sprintf(`Cannot convert value "%s" to type "System.DateTime". Error: "String was not recognized as a valid DateTime."`, *r.payload.Since),
				category: "NotSpecified: (:) [], RuntimeException", errorID: "InvalidCastParseTargetInvocation"}
		}
		// The script filters on FirstSyncTime -gt since minus a day, which
		// absorbs the server's time zone.
		since = t.Add(-24 * time.Hour)
	}
	quick := !since.IsZero()
	var head lines
	head.add(beginLine{T: "begin", Script: "inventory/1"})

	o.Mu.RLock()
	head.add(orgLine{T: "org", AdminMailRecipients: nonNil(slices.Clone(o.AdminMailRecipients)),
		DefaultAccessLevel: o.DefaultAccessLevel, UserMailInsert: o.UserMailInsert})
	for _, rule := range o.Rules {
		head.add(ruleLine{T: "rule", Name: rule.Name(), Characteristic: rule.Characteristic, QueryString: rule.QueryString, AccessLevel: rule.AccessLevel})
	}
	limit := -1
	if !everyCallHas(r.script, r.cmds, "Get-MobileDevice", "-ResultSize Unlimited") {
		limit = defaultResultSize
	}
	var (
		devices    []deviceLine
		need       []*org.User // mailboxes holding the devices, in order
		needed     = map[*org.User]bool{}
		identities []string
		lastSync   []time.Time
		truncated  bool
	)
	for _, u := range o.Users {
		for _, p := range u.Partnerships {
			if quick && !p.FirstSync.After(since) {
				continue
			}
			if limit >= 0 && len(identities) == limit {
				truncated = true
				break
			}
			d := h.mobileDevice(u, p)
			identities = append(identities, d.Identity)
			lastSync = append(lastSync, p.LastSync)
			devices = append(devices, d)
			if !needed[u] {
				needed[u] = true
				need = append(need, u)
			}
		}
	}
	mailbox := func(u *org.User) mailboxLine {
		var addrs []string
		for _, a := range u.ProxyAddresses {
			if len(a) > 5 && strings.EqualFold(a[:5], "smtp:") {
				addrs = append(addrs, a)
			}
		}
		return mailboxLine{T: "mailbox", DistinguishedName: h.mailboxDN(u), PrimarySmtpAddress: u.PrimarySMTP,
			UserPrincipalName: u.UPN, EmailAddresses: nonNil(addrs),
			ActiveSyncAllowedDeviceIDs: nonNil(slices.Clone(u.Allowed)), ActiveSyncBlockedDeviceIDs: nonNil(slices.Clone(u.Blocked))}
	}
	var mailboxes []mailboxLine
	done := map[*org.User]bool{}
	if !quick {
		// Get-CASMailbox -Filter "HasActiveSyncDevicePartnership -eq $true
		// -and -not DisplayName -like 'CAS_{*'"
		n := 0
		for _, u := range o.Users {
			if len(u.Partnerships) == 0 || strings.HasPrefix(u.DisplayName, "CAS_{") {
				continue
			}
			if n == defaultResultSize && !callHas(r.script, r.cmds, "Get-CASMailbox", "-ResultSize Unlimited") {
				truncated = true
				break
			}
			n++
			mailboxes = append(mailboxes, mailbox(u))
			done[u] = true
		}
	}
	for _, u := range need { // Get-CASMailbox -Identity <DN> for the rest
		if !done[u] {
			mailboxes = append(mailboxes, mailbox(u))
		}
	}
	o.Mu.RUnlock()

	cost := h.cost()
	out := &head
	emit := func(v any, d time.Duration) *psError { return r.emit(out, v, d) }
	for i := range devices {
		if err := emit(&devices[i], cost.PerDevice); err != nil {
			return err
		}
		h.work.devices.Add(1)
	}
	for i := range mailboxes {
		if err := emit(&mailboxes[i], cost.PerMailbox+cost.PerUPNLookup); err != nil {
			return err
		}
		h.work.mailboxes.Add(1)
		h.work.upnLookups.Add(1)
	}
	if r.payload.Stats && len(identities) > 0 {
		for i, id := range identities {
			if err := emit(statLine{T: "stat", Identity: id, LastSuccessSync: isoTime(lastSync[i])}, cost.PerStatistic); err != nil {
				return err
			}
			h.work.statistics.Add(1)
		}
	}
	if !r.meter.settle(r.ctx) {
		return errTerminated
	}
	out.add(inventoryEnd{T: "end", Devices: len(identities), Mailboxes: len(mailboxes)})
	if truncated {
		r.errs.warning(warnResultSize)
	}
	return r.flush(out)
}

// flushAt is how much output a script collects before writing it out, as
// PowerShell's console host buffers the lines it writes.
const flushAt = 32 << 10

// apply performs apply/1: one Set-CASMailbox per edit, each reporting its
// own result, so one failing mailbox never hides the others.
func (h *Host) apply(r *run) *psError {
	o := h.cfg.Org
	var out lines
	out.add(beginLine{T: "begin", Script: "apply/1"})
	if err := r.flush(&out); err != nil {
		return err
	}
	for _, e := range r.payload.Edits {
		if r.ctx.Err() != nil {
			return errTerminated
		}
		ids := len(e.AllowAdd) + len(e.AllowRemove) + len(e.BlockAdd) + len(e.BlockRemove)
		if c := h.cfg.Cost; c != nil {
			if !r.meter.charge(r.ctx, c.PerEdit, 1) || !r.meter.charge(r.ctx, c.PerChange, ids) || !r.meter.settle(r.ctx) {
				return errTerminated
			}
		}
		h.work.edits.Add(1)
		h.work.editIDs.Add(int64(ids))
		res := resultLine{T: "result", ID: e.ID, OK: true}
		o.Mu.Lock()
		var before, after [2][]string
		u := o.UserByAddress(e.Mailbox)
		if u != nil {
			before = [2][]string{slices.Clone(u.Allowed), slices.Clone(u.Blocked)}
		}
		var err error
		if strings.TrimSpace(e.Mailbox) == "" {
			err = fmt.Errorf("Cannot bind argument to parameter 'Identity' because it is an empty string.")
		} else {
			err = o.ChangeLists(e.Mailbox, org.ListChange{Add: e.AllowAdd, Remove: e.AllowRemove}, org.ListChange{Add: e.BlockAdd, Remove: e.BlockRemove})
		}
		if u != nil {
			after = [2][]string{slices.Clone(u.Allowed), slices.Clone(u.Blocked)}
		}
		o.Mu.Unlock()
		if err != nil {
			res.OK, res.Error = false, err.Error()
		} else if u != nil && slices.Equal(before[0], after[0]) && slices.Equal(before[1], after[1]) {
			r.errs.warning(fmt.Sprintf("The command completed successfully but no settings of '%s' have been modified.", h.mailboxIdentity(u)))
		}
		out.add(res)
		if err := r.flush(&out); err != nil {
			return err
		}
	}
	out.add(applyEnd{T: "end", Edits: len(r.payload.Edits)})
	return r.flush(&out)
}

// probe performs probe/1: the server, the PowerShell and Exchange
// versions, and which of the payload's cmdlets the session has.
func (h *Host) probe(r *run, have map[string]bool) *psError {
	var out lines
	out.add(beginLine{T: "begin", Script: "probe/1"})
	var version *string
	if have["get-exchangeserver"] {
		v := h.cfg.ExchangeVersion
		version = &v
	}
	var found []string
	for _, name := range r.payload.Import {
		k := strings.ToLower(name)
		if _, core := coreCmdlets[k]; core || have[k] {
			if canon, ok := exchangeCmdlets[k]; ok {
				found = append(found, canon)
			} else {
				found = append(found, coreCmdlets[k])
			}
		}
	}
	out.add(probeLine{T: "probe", Server: r.host, PS: h.cfg.PowerShellVersion, Exchange: version, Cmdlets: nonNil(found)})
	out.add(endLine{T: "end"})
	return r.flush(&out)
}
