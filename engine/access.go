package engine

import (
	"slices"
	"strings"
)

// Exchange's DeviceAccessStateReason values easgate predicts.
const (
	ExchangeReasonGlobal     = "Global"
	ExchangeReasonIndividual = "Individual"
	ExchangeReasonDeviceRule = "DeviceRule"
	ExchangeReasonPolicy     = "Policy"
)

// ExchangeAccess predicts the access Exchange gives a partnership, with
// Exchange's precedence (first match wins): mailbox policy not met, the
// mailbox's blocked list, its allowed list, a blocking, quarantining or
// allowing device access rule, the organisation's default. easgate cannot
// see the mailbox policy state except through the observed reason, so a
// partnership Exchange blocked for policy stays blocked.
func ExchangeAccess(org OrgSettings, rules []DeviceAccessRule, mb *Mailbox, d *EASDevice) (AccessState, string) {
	if d.AccessReason == ExchangeReasonPolicy && d.AccessState == StateBlocked {
		return StateBlocked, ExchangeReasonPolicy
	}
	if mb != nil {
		if containsFold(mb.Blocked, d.DeviceID) {
			return StateBlocked, ExchangeReasonIndividual
		}
		if containsFold(mb.Allowed, d.DeviceID) {
			return StateAllowed, ExchangeReasonIndividual
		}
	}
	for _, level := range [...]string{"Block", "Quarantine", "Allow"} {
		for _, r := range rules {
			if strings.EqualFold(r.AccessLevel, level) && r.QueryString == Characteristic(r.Characteristic).Of(d) {
				return levelState(level), ExchangeReasonDeviceRule
			}
		}
	}
	return levelState(org.DefaultAccessLevel), ExchangeReasonGlobal
}

func levelState(level string) AccessState {
	switch strings.ToLower(level) {
	case "block":
		return StateBlocked
	case "quarantine":
		return StateQuarantined
	case "allow":
		return StateAllowed
	}
	return StateUnknown
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
