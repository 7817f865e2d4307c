package exchange

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"easgate/engine/sim/org"
)

// Lines of the admin scripts.
type (
	adminResult struct {
		T      string            `json:"t"`
		OK     bool              `json:"ok"`
		Code   string            `json:"code,omitempty"`
		Error  string            `json:"error,omitempty"`
		Count  *int              `json:"count,omitempty"`
		Level  string            `json:"level,omitempty"`
		Fields map[string]string `json:"fields,omitempty"`
	}
	serverLine struct {
		T                   string `json:"t"`
		Name                string `json:"Name"`
		Fqdn                string `json:"Fqdn"`
		Site                string `json:"Site"`
		ServerRole          string `json:"ServerRole"`
		AdminDisplayVersion string `json:"AdminDisplayVersion"`
	}
)

// Exchange's enumerations the admin cmdlets bind.
var (
	accessLevels    = []string{"Allow", "Block", "Quarantine"}
	characteristics = []string{"DeviceType", "DeviceModel", "DeviceOS", "UserAgent", "XMSWLHeader"}
)

// enumValue binds a string to an enumeration as PowerShell does (any
// case), or returns the binder's error.
func enumValue(param, typ, v string, names []string) (string, *psError) {
	for _, n := range names {
		if strings.EqualFold(n, v) {
			return n, nil
		}
	}
	return "", &psError{message: fmt.Sprintf(`Cannot process argument transformation on parameter '%s'. Cannot convert value "%s" to type "%s". Error: "Unable to match the identifier name %s to a valid enumerator name. Specify one of the following enumerator names and try again: %s"`,
		param, v, typ, v, strings.Join(names, ", ")),
		category: "InvalidData: (:) [], ParameterBindingArgumentTransformationException", errorID: "ParameterArgumentTransformationError"}
}

// notFound is the error Exchange's cmdlets write for an identity that
// resolves to nothing.
func (h *Host) notFound(identity string) string {
	return fmt.Sprintf("The operation couldn't be performed because object '%s' couldn't be found on 'DC01.%s'.", identity, h.cfg.Org.Domain)
}

// oneLine writes begin, one result line and end.
func (r *run) oneLine(script string, v any) *psError {
	var out lines
	out.add(beginLine{T: "begin", Script: script})
	out.add(v)
	out.add(endLine{T: "end"})
	return r.flush(&out)
}

// findDevice performs the admin scripts' lookup: Get-MobileDevice
// -Mailbox, then the partnerships whose DeviceId equals the payload's,
// ignoring case. It returns the result line to write when there is none.
// Mu must be held.
func (h *Host) findDevice(r *run) (*org.User, []*org.Partnership, *adminResult) {
	o := h.cfg.Org
	u := o.UserByAddress(r.payload.Mailbox)
	if u == nil || strings.TrimSpace(r.payload.Mailbox) == "" {
		return nil, nil, &adminResult{T: "result", Code: "ObjectNotFound", Error: h.notFound(r.payload.Mailbox)}
	}
	var found []*org.Partnership
	for _, p := range u.Partnerships {
		if strings.EqualFold(p.DeviceID, r.payload.DeviceID) {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return u, nil, &adminResult{T: "result", Code: "ObjectNotFound", Error: "The mailbox has no partnership with this device ID."}
	}
	return u, found, nil
}

func (r *run) adminCost(h *Host, n int) bool {
	if h.cfg.Cost == nil {
		return r.ctx.Err() == nil
	}
	return r.meter.charge(r.ctx, h.cfg.Cost.AdminCmdlet, n) && r.meter.settle(r.ctx)
}

// remove performs remove/1: Remove-MobileDevice of the partnerships with
// the device ID, within the mailbox's monthly budget of deletions
// (EasMaxDeviceDeletesPerMonth).
func (h *Host) remove(r *run) *psError {
	if !r.adminCost(h, 1) {
		return errTerminated
	}
	o := h.cfg.Org
	o.Mu.Lock()
	u, found, res := h.findDevice(r)
	if res == nil {
		now := h.cfg.Now().UTC()
		if !h.allowDeletes(u.UPN, len(found), now) {
			res = &adminResult{T: "result", Code: "LimitsExceeded", Error: fmt.Sprintf(
				"The mobile device partnership can't be removed: the mailbox '%s' already had %d partnerships removed this month, the most its throttling policy allows (EasMaxDeviceDeletesPerMonth).",
				h.mailboxIdentity(u), h.cfg.MaxDeviceDeletesPerMonth)}
		} else {
			n := len(found)
			for _, p := range found {
				_ = o.RemovePartnership(u.UPN, p.DeviceID)
			}
			res = &adminResult{T: "result", OK: true, Count: &n}
		}
	}
	o.Mu.Unlock()
	return r.oneLine("remove/1", res)
}

// allowDeletes counts n deletions against the mailbox's budget for the
// month of now, if they fit.
func (h *Host) allowDeletes(upn string, n int, now time.Time) bool {
	h.deleteMu.Lock()
	defer h.deleteMu.Unlock()
	key := strings.ToLower(upn)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	kept := slices.DeleteFunc(h.deletes[key], func(t time.Time) bool { return t.Before(month) })
	if limit := h.cfg.MaxDeviceDeletesPerMonth; limit >= 0 && len(kept)+n > limit {
		h.deletes[key] = kept
		return false
	}
	for range n {
		kept = append(kept, now)
	}
	h.deletes[key] = kept
	return true
}

// wipe performs wipe/1: Clear-MobileDevice of the partnerships with the
// device ID, the whole device or (-AccountOnly) only the mail account.
// The request shows in Get-MobileDeviceStatistics until the device
// acknowledges it.
func (h *Host) wipe(r *run) *psError {
	if !r.adminCost(h, 1) {
		return errTerminated
	}
	o := h.cfg.Org
	o.Mu.Lock()
	_, found, res := h.findDevice(r)
	if res == nil {
		now := h.cfg.Now().UTC()
		for _, p := range found {
			p.WipeRequested, p.WipeAccountOnly = now, r.payload.AccountOnly
			p.WhenChanged = now
		}
		n := len(found)
		res = &adminResult{T: "result", OK: true, Count: &n}
	}
	o.Mu.Unlock()
	return r.oneLine("wipe/1", res)
}

// stats performs stats/1: every property of Get-MobileDeviceStatistics of
// the partnership, as text; dates in ISO 8601 UTC.
func (h *Host) stats(r *run) *psError {
	if !r.adminCost(h, 1) {
		return errTerminated
	}
	o := h.cfg.Org
	o.Mu.RLock()
	u, found, res := h.findDevice(r)
	if res == nil {
		res = &adminResult{T: "result", OK: true, Fields: h.statistics(u, found[0], r.user)}
	}
	o.Mu.RUnlock()
	return r.oneLine("stats/1", res)
}

// statistics is Get-MobileDeviceStatistics of one partnership. Status is
// Exchange's DeviceRemoteWipeStatus: DeviceOk, or DeviceWipePending once a
// wipe was requested. Mu must be held.
func (h *Host) statistics(u *org.User, p *org.Partnership, requestor string) map[string]string {
	o := h.cfg.Org
	state, reason := o.AccessOf(u, p)
	iso := func(t time.Time) string {
		if s := isoTime(t); s != nil {
			return *s
		}
		return ""
	}
	f := map[string]string{
		"Identity": o.Identity(u, p), "DeviceId": p.DeviceID, "DeviceType": p.DeviceType, "DeviceModel": p.DeviceModel,
		"DeviceOS": p.DeviceOS, "DeviceUserAgent": p.UserAgent, "DeviceFriendlyName": p.FriendlyName, "ClientType": p.ClientType,
		"FirstSyncTime": iso(p.FirstSync), "LastSuccessSync": iso(p.LastSync), "LastSyncAttemptTime": iso(p.LastSync),
		"LastPolicyUpdateTime": iso(p.FirstSync), "DeviceAccessState": state, "DeviceAccessStateReason": reason,
		"IsRemoteWipeSupported": "True", "Status": "DeviceOk",
		"DeviceWipeRequestTime": "", "DeviceWipeSentTime": "", "DeviceWipeAckTime": "",
		"AccountOnlyDeviceWipeRequestTime": "", "AccountOnlyDeviceWipeSentTime": "", "AccountOnlyDeviceWipeAckTime": "",
		"LastDeviceWipeRequestor": "",
	}
	if !p.WipeRequested.IsZero() {
		f["Status"] = "DeviceWipePending"
		key := "DeviceWipeRequestTime"
		if p.WipeAccountOnly {
			key = "AccountOnlyDeviceWipeRequestTime"
		}
		f[key] = iso(p.WipeRequested)
		f["LastDeviceWipeRequestor"] = requestor
	}
	return f
}

// orgDefault performs orgdefault/1: Set-ActiveSyncOrganizationSettings
// -DefaultAccessLevel. Every partnership without a list entry or a rule
// takes the new level at once (access states are computed on read).
func (h *Host) orgDefault(r *run) *psError {
	level, perr := enumValue("DefaultAccessLevel", "Microsoft.Exchange.Data.Directory.SystemConfiguration.DeviceAccessLevel", r.payload.Level, accessLevels)
	if perr != nil {
		perr.command = "Set-ActiveSyncOrganizationSettings"
		return perr
	}
	if !r.adminCost(h, 1) {
		return errTerminated
	}
	o := h.cfg.Org
	o.Mu.Lock()
	o.DefaultAccessLevel = level
	o.Mu.Unlock()
	return r.oneLine("orgdefault/1", adminResult{T: "result", OK: true, Level: level})
}

// rule performs rule/1: create a device access rule or change its access
// level (op set), or remove it (op remove). Rules are found by their
// characteristic and query string, compared as PowerShell's -eq does.
func (h *Host) rule(r *run) *psError {
	c, perr := enumValue("Characteristic", "Microsoft.Exchange.Data.Directory.SystemConfiguration.DeviceAccessCharacteristic", r.payload.Characteristic, characteristics)
	if perr != nil {
		perr.command = "New-ActiveSyncDeviceAccessRule"
		return perr
	}
	if !r.adminCost(h, 1) {
		return errTerminated
	}
	o := h.cfg.Org
	o.Mu.Lock()
	defer o.Mu.Unlock()
	match := func(x org.Rule) bool {
		return x.Characteristic == c && strings.EqualFold(x.QueryString, r.payload.Query)
	}
	if r.payload.Op == "remove" {
		n := len(o.Rules)
		o.Rules = slices.DeleteFunc(o.Rules, match)
		n -= len(o.Rules)
		return r.oneLine("rule/1", adminResult{T: "result", OK: true, Count: &n})
	}
	level, perr := enumValue("AccessLevel", "Microsoft.Exchange.Data.Directory.SystemConfiguration.DeviceAccessLevel", r.payload.Level, accessLevels)
	if perr != nil {
		perr.command = "New-ActiveSyncDeviceAccessRule"
		return perr
	}
	one := 1
	if i := slices.IndexFunc(o.Rules, match); i >= 0 {
		o.Rules[i].AccessLevel = level
		return r.oneLine("rule/1", adminResult{T: "result", OK: true, Count: &one})
	}
	if strings.TrimSpace(r.payload.Query) == "" {
		return &psError{command: "New-ActiveSyncDeviceAccessRule", message: "Cannot validate argument on parameter 'QueryString'. The argument is null or empty. Provide an argument that is not null or empty, and then try the command again.",
			category: "InvalidData: (:) [New-ActiveSyncDeviceAccessRule], ParameterBindingValidationException", errorID: "ParameterArgumentValidationError"}
	}
	o.Rules = append(o.Rules, org.Rule{Characteristic: c, QueryString: r.payload.Query, AccessLevel: level})
	return r.oneLine("rule/1", adminResult{T: "result", OK: true, Count: &one})
}

// servers performs servers/1: Get-ExchangeServer, the servers with client
// access services.
func (h *Host) servers(r *run) *psError {
	list := h.cfg.Servers
	if list == nil {
		domain := h.cfg.Org.Domain
		list = []ServerInfo{{Name: r.host, Fqdn: strings.ToLower(r.host) + "." + domain, Site: domain + "/Configuration/Sites/Default-First-Site-Name",
			ServerRole: "Mailbox", AdminDisplayVersion: h.cfg.ExchangeVersion, IsClientAccessServer: true}}
	}
	var out lines
	out.add(beginLine{T: "begin", Script: "servers/1"})
	for _, s := range list {
		if !s.IsClientAccessServer && !strings.Contains(s.ServerRole, "ClientAccess") {
			continue
		}
		out.add(serverLine{T: "server", Name: s.Name, Fqdn: s.Fqdn, Site: s.Site, ServerRole: s.ServerRole, AdminDisplayVersion: s.AdminDisplayVersion})
	}
	out.add(endLine{T: "end"})
	return r.flush(&out)
}
