package exchange

import (
	"strings"
	"time"
)

// The per-mailbox scripts a benchmark's baseline sends: the way admins'
// own scripts and older tools work, one powershell.exe per mailbox to read
// and one per change to write, each opening its own Exchange session. The
// host runs them under the same cost model as easgate's scripts, so the
// two can be compared.
const (
	// scriptBaselineList lists the CAS mailboxes that have partnerships
	// (Get-CASMailbox -ResultSize Unlimited -Filter
	// "HasActiveSyncDevicePartnership -eq $true"): one mailbox line each.
	scriptBaselineList = "baseline-list/1"
	// scriptBaselineMailbox reads one mailbox (payload "mailbox"):
	// Get-CASMailbox and Get-Mailbox of it, Get-MobileDevice -Mailbox, and
	// Get-MobileDeviceStatistics of each partnership.
	scriptBaselineMailbox = "baseline-mailbox/1"
	// scriptBaselineChange is one Set-CASMailbox (payload "edits", as
	// apply/1 takes them, one edit of one change).
	scriptBaselineChange = "baseline-change/1"
)

// baseline performs the baseline scripts.
func (h *Host) baseline(r *run, name string) *psError {
	if name == scriptBaselineChange {
		return h.apply(r)
	}
	cost := h.cost()
	o := h.cfg.Org
	var out lines
	out.add(beginLine{T: "begin", Script: name})
	emit := func(v any, d time.Duration) *psError { return r.emit(&out, v, d) }
	var (
		mailboxes []mailboxLine
		devices   []deviceLine
		lastSync  []time.Time
	)
	o.Mu.RLock()
	if name == scriptBaselineList {
		for _, u := range o.Users {
			if len(u.Partnerships) == 0 || strings.HasPrefix(u.DisplayName, "CAS_{") {
				continue
			}
			mailboxes = append(mailboxes, mailboxLine{T: "mailbox", DistinguishedName: h.mailboxDN(u), PrimarySmtpAddress: u.PrimarySMTP})
		}
	} else if u := o.UserByAddress(r.payload.Mailbox); u != nil {
		mailboxes = append(mailboxes, mailboxLine{T: "mailbox", DistinguishedName: h.mailboxDN(u), PrimarySmtpAddress: u.PrimarySMTP,
			UserPrincipalName: u.UPN, EmailAddresses: []string{}, ActiveSyncAllowedDeviceIDs: nonNil(append([]string(nil), u.Allowed...)),
			ActiveSyncBlockedDeviceIDs: nonNil(append([]string(nil), u.Blocked...))})
		for _, p := range u.Partnerships {
			devices = append(devices, h.mobileDevice(u, p))
			lastSync = append(lastSync, p.LastSync)
		}
	}
	o.Mu.RUnlock()
	if name == scriptBaselineMailbox && len(mailboxes) == 0 {
		return r.cmdletError("Get-CASMailbox", h.notFound(r.payload.Mailbox),
			"NotSpecified: (:) [Get-CASMailbox], ManagementObjectNotFoundException", "ManagementObjectNotFoundException")
	}
	perMailbox := cost.PerMailbox
	if name == scriptBaselineMailbox {
		perMailbox += cost.PerUPNLookup
	}
	for i := range mailboxes {
		if err := emit(&mailboxes[i], perMailbox); err != nil {
			return err
		}
		h.work.mailboxes.Add(1)
		if name == scriptBaselineMailbox {
			h.work.upnLookups.Add(1)
		}
	}
	for i := range devices {
		if err := emit(&devices[i], cost.PerDevice); err != nil {
			return err
		}
		h.work.devices.Add(1)
	}
	for i := range devices {
		if err := emit(statLine{T: "stat", Identity: devices[i].Identity, LastSuccessSync: isoTime(lastSync[i])}, cost.PerStatistic); err != nil {
			return err
		}
		h.work.statistics.Add(1)
	}
	if !r.meter.settle(r.ctx) {
		return errTerminated
	}
	out.add(inventoryEnd{T: "end", Devices: len(devices), Mailboxes: len(mailboxes)})
	return r.flush(&out)
}
