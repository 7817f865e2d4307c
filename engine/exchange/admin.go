package exchange

import (
	"context"
	"fmt"
	"strings"
	"time"

	"easgate/engine"
)

// adminPayload is the stdin of the admin scripts.
type adminPayload struct {
	sessionPayload
	Mailbox        string `json:"mailbox,omitempty"`
	DeviceID       string `json:"device_id,omitempty"`
	AccountOnly    bool   `json:"account_only,omitempty"`
	Level          string `json:"level,omitempty"`
	Op             string `json:"op,omitempty"`
	Characteristic string `json:"characteristic,omitempty"`
	Query          string `json:"query,omitempty"`
}

// admin runs one admin script and returns its result line. Exchange's
// refusal is an error: engine.ErrNotFound for an unknown mailbox or
// device, ErrThrottled for a spent budget, ErrScript otherwise.
func (c *Client) admin(ctx context.Context, s Script, p adminPayload) (*record, error) {
	var result *record
	var bad []string
	var parser lineParser
	payload := func(sp sessionPayload) any {
		q := p
		q.sessionPayload = sp
		return q
	}
	res, err := c.run(ctx, s, payload, func(n int, line []byte) {
		perr := parser.parse(line, func(r *record) {
			if r.T == "result" {
				x := *r
				result = &x
			}
		})
		if perr != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", n, perr))
		}
	})
	if err != nil {
		return nil, err
	}
	if err := scriptError(s, res); err != nil {
		return nil, err
	}
	if result == nil {
		return nil, &connError{kind: ErrConnection, err: fmt.Errorf("%s on %s wrote no result (%s)", s.Name, res.server, strings.Join(bad, "; "))}
	}
	if !result.OK {
		msg := strings.Join(strings.Fields(string(result.Error)), " ")
		if msg == "" {
			msg = "Exchange refused without a reason"
		}
		switch string(result.Code) {
		case "ObjectNotFound":
			return result, fmt.Errorf("%w: %s", engine.ErrNotFound, msg)
		case "LimitsExceeded", "QuotaExceeded":
			return result, fmt.Errorf("%w: %s", ErrThrottled, msg)
		}
		return result, fmt.Errorf("%w: %s on %s: %s", ErrScript, s.Name, res.server, msg)
	}
	return result, nil
}

// partnership checks the mailbox and device ID an admin call names.
func partnership(mailbox, deviceID string) (string, string, error) {
	mailbox, deviceID = strings.TrimSpace(mailbox), strings.TrimSpace(deviceID)
	if mailbox == "" || deviceID == "" {
		return "", "", fmt.Errorf("%w: a partnership needs its mailbox and device ID", engine.ErrNotFound)
	}
	return mailbox, deviceID, nil
}

// RemoveDevice removes a partnership (Remove-MobileDevice). Exchange
// allows only so many deletions per mailbox a month
// (EasMaxDeviceDeletesPerMonth, 20 by default); past it the call fails
// with ErrThrottled.
func (c *Client) RemoveDevice(ctx context.Context, mailbox, deviceID string) error {
	mailbox, deviceID, err := partnership(mailbox, deviceID)
	if err != nil {
		return err
	}
	if _, err := c.admin(ctx, removeScript, adminPayload{Mailbox: mailbox, DeviceID: deviceID}); err != nil {
		return fmt.Errorf("remove the partnership: %w", err)
	}
	c.log.Info("exchange partnership removed", "mailbox", mailbox, "device_id", deviceID)
	return nil
}

// WipeDevice requests a remote wipe (Clear-MobileDevice) of the whole
// device, or with accountOnly of the mail account alone. The device
// carries it out at its next sync; DeviceStatistics shows the request.
func (c *Client) WipeDevice(ctx context.Context, mailbox, deviceID string, accountOnly bool) error {
	mailbox, deviceID, err := partnership(mailbox, deviceID)
	if err != nil {
		return err
	}
	if _, err := c.admin(ctx, wipeScript, adminPayload{Mailbox: mailbox, DeviceID: deviceID, AccountOnly: accountOnly}); err != nil {
		return fmt.Errorf("request a wipe: %w", err)
	}
	c.log.Warn("exchange wipe requested", "mailbox", mailbox, "device_id", deviceID, "account_only", accountOnly)
	return nil
}

// DeviceStatistics reads Get-MobileDeviceStatistics of one partnership.
func (c *Client) DeviceStatistics(ctx context.Context, mailbox, deviceID string) (*engine.DeviceStatistics, error) {
	mailbox, deviceID, err := partnership(mailbox, deviceID)
	if err != nil {
		return nil, err
	}
	r, err := c.admin(ctx, statsScript, adminPayload{Mailbox: mailbox, DeviceID: deviceID})
	if err != nil {
		return nil, fmt.Errorf("read device statistics: %w", err)
	}
	f := map[string]string{}
	for k, v := range r.Fields {
		f[k] = string(v)
	}
	st := &engine.DeviceStatistics{Status: f["Status"], WipeStatus: wipeStatus(f), Fields: f}
	st.LastSuccessSync, _ = parseTime(f["LastSuccessSync"])
	st.LastPolicyUpdate, _ = parseTime(f["LastPolicyUpdateTime"])
	return st, nil
}

// wipeStatus says in words where a wipe stands, from the statistics'
// wipe times; "" when none was requested.
func wipeStatus(f map[string]string) string {
	for _, w := range []struct{ prefix, what string }{{"", "wipe"}, {"AccountOnly", "account-only wipe"}} {
		for _, step := range []struct{ field, verb string }{{"AckTime", "acknowledged"}, {"SentTime", "sent"}, {"RequestTime", "requested"}} {
			if t, err := parseTime(f[w.prefix+"DeviceWipe"+step.field]); err == nil && !t.IsZero() {
				return w.what + " " + step.verb + " " + t.Format(time.RFC3339)
			}
		}
	}
	return ""
}

// canonical returns the name in names that s is, in any case.
func canonical(s string, names []string) (string, bool) {
	for _, n := range names {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return n, true
		}
	}
	return "", false
}

// SetOrgDefault sets the organisation's DefaultAccessLevel (Allow, Block
// or Quarantine). Every partnership without a list entry or a matching
// rule takes it at once.
func (c *Client) SetOrgDefault(ctx context.Context, level string) error {
	lvl, ok := canonical(level, accessLevels)
	if !ok {
		return fmt.Errorf("%w: access level %q: want Allow, Block or Quarantine", ErrConfig, level)
	}
	r, err := c.admin(ctx, orgDefaultScript, adminPayload{Level: lvl})
	if err != nil {
		return fmt.Errorf("set the default access level: %w", err)
	}
	if got := string(r.Level); !strings.EqualFold(got, lvl) {
		return fmt.Errorf("%w: DefaultAccessLevel reads %q after setting it to %s", ErrScript, got, lvl)
	}
	c.log.Warn("exchange default access level set", "level", lvl)
	return nil
}

// checkRule validates a device access rule before it goes to Exchange.
func checkRule(rule engine.DeviceAccessRule, needLevel bool) (engine.DeviceAccessRule, error) {
	ch, ok := canonical(rule.Characteristic, characteristics[:4])
	if !ok {
		return rule, fmt.Errorf("%w: rule characteristic %q: want DeviceType, DeviceModel, DeviceOS or UserAgent", ErrConfig, rule.Characteristic)
	}
	rule.Characteristic = ch
	if rule.QueryString == "" {
		return rule, fmt.Errorf("%w: a device access rule needs its query string", ErrConfig)
	}
	if needLevel {
		lvl, ok := canonical(rule.AccessLevel, accessLevels)
		if !ok {
			return rule, fmt.Errorf("%w: rule access level %q: want Allow, Block or Quarantine", ErrConfig, rule.AccessLevel)
		}
		rule.AccessLevel = lvl
	}
	return rule, nil
}

// SetDeviceRule creates a device access rule, or changes the access level
// of the rule with the same characteristic and query string.
func (c *Client) SetDeviceRule(ctx context.Context, rule engine.DeviceAccessRule) error {
	rule, err := checkRule(rule, true)
	if err != nil {
		return err
	}
	if _, err := c.admin(ctx, ruleScript, adminPayload{Op: "set", Characteristic: rule.Characteristic, Query: rule.QueryString, Level: rule.AccessLevel}); err != nil {
		return fmt.Errorf("set device access rule %s: %w", rule.Name(), err)
	}
	c.log.Info("exchange device access rule set", "rule", rule.Name(), "level", rule.AccessLevel)
	return nil
}

// RemoveDeviceRule removes the device access rule with the rule's
// characteristic and query string; removing one that is not there is not
// an error.
func (c *Client) RemoveDeviceRule(ctx context.Context, rule engine.DeviceAccessRule) error {
	rule, err := checkRule(rule, false)
	if err != nil {
		return err
	}
	if _, err := c.admin(ctx, ruleScript, adminPayload{Op: "remove", Characteristic: rule.Characteristic, Query: rule.QueryString}); err != nil {
		return fmt.Errorf("remove device access rule %s: %w", rule.Name(), err)
	}
	c.log.Info("exchange device access rule removed", "rule", rule.Name())
	return nil
}

// ServerInfo is an Exchange server with client access services, as
// Get-ExchangeServer shows it.
type ServerInfo struct {
	Name    string `json:"name"`
	Fqdn    string `json:"fqdn"`
	Site    string `json:"site"`
	Roles   string `json:"roles"`
	Version string `json:"version"`
}

// DiscoverServers asks Exchange for its servers with client access
// services (Get-ExchangeServer) and keeps the list (see Discovered): the
// candidates an admin can add to the failover list.
func (c *Client) DiscoverServers(ctx context.Context) ([]ServerInfo, error) {
	return c.discover(ctx, nil)
}

// discover runs the discovery on pin, or on the first server that takes it.
func (c *Client) discover(ctx context.Context, pin *server) ([]ServerInfo, error) {
	var found []ServerInfo
	var parser lineParser
	payload := func(sp sessionPayload) any { return adminPayload{sessionPayload: sp} }
	res, err := c.runOn(ctx, pin, serversScript, payload, func(_ int, line []byte) {
		_ = parser.parse(line, func(r *record) {
			if r.T == "server" {
				found = append(found, ServerInfo{Name: string(r.Name), Fqdn: string(r.Fqdn), Site: string(r.Site),
					Roles: string(r.ServerRole), Version: string(r.AdminDisplayVersion)})
			}
		})
	})
	if err == nil {
		err = scriptError(serversScript, res)
	}
	if err != nil {
		return nil, fmt.Errorf("discover exchange servers: %w", err)
	}
	c.mu.Lock()
	c.discovered = found
	c.mu.Unlock()
	return append([]ServerInfo(nil), found...), nil
}

// Discovered returns the servers the last DiscoverServers found.
func (c *Client) Discovered() []ServerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ServerInfo(nil), c.discovered...)
}
