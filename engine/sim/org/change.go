package org

import (
	"fmt"
	"strings"
	"time"
)

// Enroll enrolls the partnership's device in Intune, as a user finishing
// the enrollment would: a new managed device of the user, compliant or not,
// reporting the EAS device ID when the platform does. It returns the
// managed device's ID. Mu must be held (for writing).
func (o *Org) Enroll(upn, deviceID string, compliance string, reportEASID bool, now time.Time) (string, error) {
	u := o.UserByUPN(upn)
	if u == nil {
		return "", fmt.Errorf("no user %q", upn)
	}
	p := u.Partnership(deviceID)
	if p == nil {
		return "", fmt.Errorf("user %q has no partnership %q", upn, deviceID)
	}
	md := &ManagedDevice{
		ID:                  fmt.Sprintf("%08x-0000-4000-8000-%012x", len(o.Managed)+1, now.UnixNano()&0xffffffffffff),
		UserID:              u.ID,
		UserPrincipalName:   u.UPN,
		EmailAddress:        u.PrimarySMTP,
		DeviceName:          strings.SplitN(u.DisplayName, " ", 2)[0] + "'s " + p.DeviceModel,
		OperatingSystem:     osOf(p),
		Model:               p.DeviceModel,
		ComplianceState:     compliance,
		ManagementAgent:     "mdm",
		EASActivated:        true,
		EnrolledDateTime:    now,
		LastSyncDateTime:    now,
		ExchangeAccessState: "none",
	}
	if reportEASID {
		md.EASDeviceID = p.DeviceID
	}
	o.AddManaged(md)
	return md.ID, nil
}

func osOf(p *Partnership) string {
	switch {
	case strings.HasPrefix(p.DeviceOS, "iOS"):
		return "iOS"
	case strings.HasPrefix(p.DeviceOS, "Android"):
		return "Android"
	}
	return p.DeviceOS
}

// SetCompliance changes a managed device's compliance state and marks it
// as just synced. Mu must be held (for writing).
func (o *Org) SetCompliance(mdmID, state string, now time.Time) error {
	md := o.ManagedByID(mdmID)
	if md == nil {
		return fmt.Errorf("no managed device %q", mdmID)
	}
	md.ComplianceState = state
	md.LastSyncDateTime = now
	return nil
}

// RemoveManaged deletes a managed device (retire/delete in Intune). Mu must
// be held (for writing).
func (o *Org) RemoveManaged(mdmID string) {
	for i, md := range o.Managed {
		if md.ID == mdmID {
			o.Managed = append(o.Managed[:i], o.Managed[i+1:]...)
			break
		}
	}
	delete(o.managedID, mdmID)
}

// AddPartnership adds a partnership to a user's mailbox, as a device's first
// sync does; it fails at Exchange's partnership limit. Mu must be held (for
// writing).
func (o *Org) AddPartnership(upn string, p *Partnership) error {
	u := o.UserByUPN(upn)
	if u == nil {
		return fmt.Errorf("no user %q", upn)
	}
	if len(u.Partnerships) >= MaxPartnerships {
		return fmt.Errorf("mailbox %s already has %d device partnerships", upn, MaxPartnerships)
	}
	if p.ClientType == "" {
		p.ClientType = ClientEAS
	}
	u.Partnerships = append(u.Partnerships, p)
	return nil
}

// RemovePartnership deletes a partnership (Remove-MobileDevice). Mu must be
// held (for writing).
func (o *Org) RemovePartnership(upn, deviceID string) error {
	u := o.UserByUPN(upn)
	if u == nil {
		return fmt.Errorf("no user %q", upn)
	}
	for i, p := range u.Partnerships {
		if strings.EqualFold(p.DeviceID, deviceID) {
			u.Partnerships = append(u.Partnerships[:i], u.Partnerships[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("user %q has no partnership %q", upn, deviceID)
}

// Counts summarises the organisation.
type Counts struct {
	Users, Partnerships, EAS, Managed, ReportedEASIDs int
}

// Count summarises the organisation. Mu must be held.
func (o *Org) Count() Counts {
	c := Counts{Users: len(o.Users), Managed: len(o.Managed)}
	for _, u := range o.Users {
		c.Partnerships += len(u.Partnerships)
		for _, p := range u.Partnerships {
			if p.ClientType == ClientEAS {
				c.EAS++
			}
		}
	}
	for _, md := range o.Managed {
		if md.EASDeviceID != "" {
			c.ReportedEASIDs++
		}
	}
	return c
}
