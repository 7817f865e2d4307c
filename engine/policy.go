package engine

import (
	"fmt"
	"time"
)

// Characteristic names a device property a platform exception or an Exchange
// device access rule matches on.
type Characteristic string

// Characteristics Exchange device access rules and platform exceptions use.
const (
	CharDeviceType  Characteristic = "DeviceType"
	CharDeviceModel Characteristic = "DeviceModel"
	CharDeviceOS    Characteristic = "DeviceOS"
	CharUserAgent   Characteristic = "UserAgent"
)

// Of returns the device's value of the characteristic.
func (c Characteristic) Of(d *EASDevice) string {
	switch c {
	case CharDeviceType:
		return d.DeviceType
	case CharDeviceModel:
		return d.DeviceModel
	case CharDeviceOS:
		return d.DeviceOS
	case CharUserAgent:
		return d.UserAgent
	}
	return ""
}

// PlatformException gives devices with an exact characteristic value a fixed
// access, as Intune's Exchange on-premises access platform exceptions did.
type PlatformException struct {
	Characteristic Characteristic `json:"characteristic"`
	Value          string         `json:"value"`
	Access         Access         `json:"access"`
}

// Safety holds the brake's limits.
type Safety struct {
	MaxNewBlocks        int     `json:"max_new_blocks"`
	MaxNewBlocksPercent float64 `json:"max_new_blocks_percent"`
}

// Limit is the most new blocks a plan may hold for the given number of
// in-scope devices before the brake holds it.
func (s Safety) Limit(inScope int) int {
	pct := int(s.MaxNewBlocksPercent * float64(inScope) / 100)
	return max(s.MaxNewBlocks, pct)
}

// NotifyPolicy says when users are mailed about unmanaged devices.
type NotifyPolicy struct {
	Enabled     bool          `json:"enabled"`
	ResendAfter time.Duration `json:"resend_after"`
	MaxResends  int           `json:"max_resends"`
	// AdminDigest mails the org's AdminMailRecipients a summary after a
	// run that blocked devices.
	AdminDigest bool `json:"admin_digest"`
}

// Policy is what easgate enforces: the settings Intune's Exchange on-premises
// access had, plus the grace period, the safety brake and notification rules.
type Policy struct {
	IncludeGroups       []string            `json:"include_groups"`
	ExcludeGroups       []string            `json:"exclude_groups"`
	UnmanagedAccess     Access              `json:"unmanaged_access"`
	BlockNoncompliant   bool                `json:"block_noncompliant"`
	OverrideDefaultRule bool                `json:"override_default_rule"`
	GracePeriod         time.Duration       `json:"grace_period"`
	PlatformExceptions  []PlatformException `json:"platform_exceptions"`
	ManageOrgDefault    bool                `json:"manage_org_default"`
	RemoveIdleAfter     time.Duration       `json:"remove_idle_after"`
	AutoLinkSuggestions bool                `json:"auto_link_suggestions"`
	Safety              Safety              `json:"safety"`
	Notify              NotifyPolicy        `json:"notify"`
}

// DefaultPolicy returns the policy easgate uses where the config is silent.
func DefaultPolicy() Policy {
	return Policy{
		UnmanagedAccess:     AccessBlock,
		BlockNoncompliant:   true,
		OverrideDefaultRule: true,
		Safety:              Safety{MaxNewBlocks: 50, MaxNewBlocksPercent: 10},
		Notify:              NotifyPolicy{Enabled: true, ResendAfter: 72 * time.Hour, MaxResends: 3},
	}
}

// Validate reports the first thing wrong with the policy.
func (p *Policy) Validate() error {
	switch p.UnmanagedAccess {
	case AccessAllow, AccessBlock, AccessQuarantine:
	default:
		return fmt.Errorf("unmanaged_access %q: want block, quarantine or allow", p.UnmanagedAccess)
	}
	for i, e := range p.PlatformExceptions {
		switch e.Characteristic {
		case CharDeviceType, CharDeviceModel, CharDeviceOS, CharUserAgent:
		default:
			return fmt.Errorf("platform_exceptions[%d].characteristic %q: want DeviceType, DeviceModel, DeviceOS or UserAgent", i, e.Characteristic)
		}
		switch e.Access {
		case AccessAllow, AccessBlock, AccessQuarantine:
		default:
			return fmt.Errorf("platform_exceptions[%d].access %q: want allow, block or quarantine", i, e.Access)
		}
		if e.Value == "" {
			return fmt.Errorf("platform_exceptions[%d].value is empty", i)
		}
	}
	if p.GracePeriod < 0 || p.RemoveIdleAfter < 0 {
		return fmt.Errorf("grace_period and remove_idle_after must not be negative")
	}
	if p.Safety.MaxNewBlocks < 0 || p.Safety.MaxNewBlocksPercent < 0 || p.Safety.MaxNewBlocksPercent > 100 {
		return fmt.Errorf("safety: max_new_blocks must be ≥ 0 and max_new_blocks_percent within 0..100")
	}
	return nil
}
