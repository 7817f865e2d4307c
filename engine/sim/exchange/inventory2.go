package exchange

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"easgate/engine/sim/org"
)

// Lines of inventory/2 besides inventory/1's.
type (
	devicesLine struct {
		T       string `json:"t"`
		Devices int    `json:"devices"`
	}
	doneLine struct {
		T  string `json:"t"`
		ID string `json:"id"`
	}
	errorLine struct {
		T         string `json:"t"`
		MailboxDN string `json:"mailbox_dn"`
		Message   string `json:"message"`
	}
	warningLine struct {
		T       string `json:"t"`
		Message string `json:"message"`
	}
	fedEnd struct {
		T         string `json:"t"`
		Devices   int    `json:"devices"`
		Mailboxes int    `json:"mailboxes"`
		Stats     int    `json:"stats"`
	}
	// fedRequest is one line of work inventory/2 reads from stdin.
	fedRequest struct {
		ID        string   `json:"id"`
		Mailboxes []string `json:"mailboxes"` // distinguished names
		Stats     []string `json:"stats"`     // partnership identities
	}
)

// readsLines reports whether a script reads its payload as stdin's first
// line and the rest as it goes.
func readsLines(script string) bool {
	l := strings.ToLower(script)
	return strings.Contains(l, "[console]::in.readline()") && !strings.Contains(l, "[console]::in.readtoend()")
}

// readLine reads one line of stdin, without its line end.
func readLine(in *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := in.ReadSlice('\n')
		if len(line)+len(chunk) > maxStdin {
			return nil, errors.New("stdin line too long")
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

// inventoryFed performs inventory/2, the full inventory a client spreads
// over several processes: with payload "devices", the organisation's
// settings, its rules and every partnership (Get-MobileDevice, as
// inventory/1); then, for each request line read from stdin until it
// ends, Get-CASMailbox and Get-Mailbox of each mailbox it names and
// Get-MobileDeviceStatistics of each partnership, and a done line.
func (h *Host) inventoryFed(r *run) *psError {
	o := h.cfg.Org
	cost := h.cost()
	var out lines
	emit := func(v any, d time.Duration) *psError { return r.emit(&out, v, d) }
	out.add(beginLine{T: "begin", Script: "inventory/2"})
	end := fedEnd{T: "end"}
	if r.payload.Devices {
		var devices []deviceLine
		o.Mu.RLock()
		out.add(orgLine{T: "org", AdminMailRecipients: nonNil(append([]string(nil), o.AdminMailRecipients...)),
			DefaultAccessLevel: o.DefaultAccessLevel, UserMailInsert: o.UserMailInsert})
		for _, rule := range o.Rules {
			out.add(ruleLine{T: "rule", Name: rule.Name(), Characteristic: rule.Characteristic, QueryString: rule.QueryString, AccessLevel: rule.AccessLevel})
		}
		for _, u := range o.Users {
			for _, p := range u.Partnerships {
				devices = append(devices, h.mobileDevice(u, p))
			}
		}
		o.Mu.RUnlock()
		for i := range devices {
			if err := emit(&devices[i], cost.PerDevice); err != nil {
				return err
			}
			h.work.devices.Add(1)
		}
		end.Devices = len(devices)
		if !r.meter.settle(r.ctx) {
			return errTerminated
		}
		out.add(devicesLine{T: "devices", Devices: len(devices)})
		if err := r.flush(&out); err != nil {
			return err
		}
	}
	var byDN map[string]*org.User
	type partnership struct {
		u *org.User
		p *org.Partnership
	}
	var byIdentity map[string]partnership
	for r.in != nil {
		line, err := readLine(r.in)
		if len(bytes.TrimSpace(line)) > 0 {
			var q fedRequest
			if jerr := json.Unmarshal(line, &q); jerr != nil {
				return r.cmdletError("ConvertFrom-Json", "Invalid JSON primitive: "+firstWord(string(line))+".",
					"NotSpecified: (:) [ConvertFrom-Json], ArgumentException", "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand")
			}
			var mailboxes []any
			var stats []any
			o.Mu.RLock()
			if byDN == nil && len(q.Mailboxes) > 0 {
				byDN = make(map[string]*org.User, len(o.Users))
				for _, u := range o.Users {
					byDN[strings.ToLower(h.mailboxDN(u))] = u
				}
			}
			if byIdentity == nil && len(q.Stats) > 0 {
				byIdentity = map[string]partnership{}
				for _, u := range o.Users {
					for _, p := range u.Partnerships {
						byIdentity[strings.ToLower(o.Identity(u, p))] = partnership{u, p}
					}
				}
			}
			for _, dn := range q.Mailboxes {
				if strings.TrimSpace(dn) == "" {
					continue
				}
				u := byDN[strings.ToLower(dn)]
				if u == nil {
					mailboxes = append(mailboxes, errorLine{T: "error", MailboxDN: dn, Message: h.notFound(dn)})
					continue
				}
				var addrs []string
				for _, a := range u.ProxyAddresses {
					if len(a) > 5 && strings.EqualFold(a[:5], "smtp:") {
						addrs = append(addrs, a)
					}
				}
				mailboxes = append(mailboxes, mailboxLine{T: "mailbox", DistinguishedName: h.mailboxDN(u), PrimarySmtpAddress: u.PrimarySMTP,
					UserPrincipalName: u.UPN, EmailAddresses: nonNil(addrs),
					ActiveSyncAllowedDeviceIDs: nonNil(append([]string(nil), u.Allowed...)), ActiveSyncBlockedDeviceIDs: nonNil(append([]string(nil), u.Blocked...))})
			}
			for _, id := range q.Stats {
				if strings.TrimSpace(id) == "" {
					continue
				}
				if x, ok := byIdentity[strings.ToLower(id)]; ok {
					stats = append(stats, statLine{T: "stat", Identity: o.Identity(x.u, x.p), LastSuccessSync: isoTime(x.p.LastSync)})
				} else {
					stats = append(stats, warningLine{T: "warning", Message: h.notFound(id)})
				}
			}
			o.Mu.RUnlock()
			for _, m := range mailboxes {
				if err := emit(m, cost.PerMailbox+cost.PerUPNLookup); err != nil {
					return err
				}
				if _, ok := m.(mailboxLine); ok {
					end.Mailboxes++
					h.work.mailboxes.Add(1)
					h.work.upnLookups.Add(1)
				}
			}
			for _, s := range stats {
				if err := emit(s, cost.PerStatistic); err != nil {
					return err
				}
				if _, ok := s.(statLine); ok {
					end.Stats++
					h.work.statistics.Add(1)
				}
			}
			if !r.meter.settle(r.ctx) {
				return errTerminated
			}
			out.add(doneLine{T: "done", ID: q.ID})
			if err := r.flush(&out); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return errTerminated // the command was terminated while the script waited for work
		}
	}
	out.add(end)
	return r.flush(&out)
}
