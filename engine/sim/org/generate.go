package org

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Well-known group IDs of a generated organisation.
const (
	GroupMobileUsers = "6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d01" // every user, through two nested groups
	GroupStaff       = "6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d02" // nested in GroupMobileUsers
	GroupExecutives  = "6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d03" // nested in GroupMobileUsers
	GroupExempt      = "6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d04" // a few users to exclude from the policy
)

// Profile names the kind of device a generated partnership models.
type Profile string

// Generated device profiles, and what each looks like on both sides.
const (
	ProfileIPhone       Profile = "iphone"        // native mail, enrolled, EAS ID reported
	ProfileIPad         Profile = "ipad"          // native mail, enrolled, EAS ID reported
	ProfileSamsung      Profile = "samsung"       // Samsung Email, enrolled, EAS ID reported
	ProfileAndroid      Profile = "android"       // Gmail on a Pixel: enrolled, EAS ID never reported
	ProfileUnenrolled   Profile = "unenrolled"    // a personal phone Intune has never seen
	ProfileNoncompliant Profile = "noncompliant"  // enrolled, reported, noncompliant
	ProfileOutlook      Profile = "outlook"       // Outlook for iOS and Android (REST, not governed by EAS lists)
	ProfileAdminAllowed Profile = "admin-allowed" // unenrolled, but an admin allow-listed it by hand
)

// Options shape a generated organisation.
type Options struct {
	Users int
	Seed  uint64
	Now   time.Time
	// Domain defaults to contoso.com.
	Domain string
}

var (
	firstNames = []string{"Anna", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas",
		"Karin", "Lukas", "Maria", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Simon", "Tara",
		"Uwe", "Vera", "William", "Xenia", "Yusuf", "Zoe", "Adele", "Bruno", "Clara", "Dmitri"}
	lastNames = []string{"Schmidt", "Novak", "Dubois", "Rossi", "Jensen", "Kowalski", "Garcia", "Smith",
		"Meyer", "Tanaka", "Okafor", "Larsen", "Fischer", "Moreau", "Silva", "Nguyen", "Brown", "Weber",
		"Costa", "Horvat", "Ivanova", "Keller", "Lindqvist", "Murphy", "Olsen", "Petrov", "Quint", "Richter"}
	iphoneModels = []struct{ eas, marketing string }{
		{"iPhone15C2", "iPhone 14 Pro"}, {"iPhone15C4", "iPhone 15"}, {"iPhone16C1", "iPhone 15 Pro"},
		{"iPhone14C7", "iPhone 14"}, {"iPhone17C3", "iPhone 16"}}
	ipadModels    = []struct{ eas, marketing string }{{"iPad13C16", "iPad Air (5th generation)"}, {"iPad14C1", "iPad mini (6th generation)"}}
	iosVersions   = []struct{ os, build string }{{"17.5.1", "21F90"}, {"17.6.1", "21G93"}, {"18.1", "22B83"}, {"18.3.2", "22D82"}}
	samsungModels = []string{"SM-S911B", "SM-S921B", "SM-A546B", "SM-G991B"}
	pixelModels   = []string{"Pixel 8", "Pixel 7a", "Pixel 9"}
	androidVers   = []string{"13", "14", "15"}
)

// Generate builds a plausible organisation: about 1.5 partnerships per user,
// mostly enrolled iPhones and Samsung phones whose EAS IDs Intune reports,
// Pixel phones that are enrolled but never report one, personal phones
// Intune has never seen, some noncompliant devices, Outlook app
// partnerships, a few admin allow-list entries, Intune-only Windows laptops,
// and nested scope groups. The same options give the same organisation.
func Generate(opt Options) *Org {
	if opt.Domain == "" {
		opt.Domain = "contoso.com"
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now().UTC()
	}
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	g := &gen{rng: rng, now: opt.Now.UTC().Truncate(time.Second)}
	o := New(opt.Domain, g.guid())
	o.AdminMailRecipients = []string{"mobile-admins@" + opt.Domain}
	o.Rules = []Rule{{Characteristic: "DeviceModel", QueryString: "Nokia Lumia 930", AccessLevel: "Block"}}

	staff := &Group{ID: GroupStaff, DisplayName: "Staff"}
	execs := &Group{ID: GroupExecutives, DisplayName: "Executives"}
	exempt := &Group{ID: GroupExempt, DisplayName: "Mobile policy exemptions"}
	seen := map[string]int{}
	for i := 0; i < opt.Users; i++ {
		u := g.user(opt.Domain, seen)
		o.AddUser(u)
		switch {
		case i%50 == 7:
			execs.Members = append(execs.Members, u.ID)
		default:
			staff.Members = append(staff.Members, u.ID)
		}
		if i%97 == 13 {
			exempt.Members = append(exempt.Members, u.ID)
		}
		n := 1
		switch r := rng.IntN(100); {
		case r < 25:
			n = 2
		case r < 35:
			n = 3
		}
		for range n {
			g.device(o, u, g.profile())
		}
		if rng.IntN(100) < 30 {
			g.laptop(o, u)
		}
	}
	o.AddGroup(&Group{ID: GroupMobileUsers, DisplayName: "Mobile users", Members: []string{GroupStaff, GroupExecutives}})
	o.AddGroup(staff)
	o.AddGroup(execs)
	o.AddGroup(exempt)
	return o
}

type gen struct {
	rng *rand.Rand
	now time.Time
}

func (g *gen) profile() Profile {
	switch r := g.rng.IntN(100); {
	case r < 38:
		return ProfileIPhone
	case r < 43:
		return ProfileIPad
	case r < 63:
		return ProfileSamsung
	case r < 76:
		return ProfileAndroid
	case r < 87:
		return ProfileUnenrolled
	case r < 93:
		return ProfileNoncompliant
	case r < 99:
		return ProfileOutlook
	default:
		return ProfileAdminAllowed
	}
}

func (g *gen) guid() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (g *gen) chars(n int, alphabet string) string {
	var sb strings.Builder
	for range n {
		sb.WriteByte(alphabet[g.rng.IntN(len(alphabet))])
	}
	return sb.String()
}

const (
	upperAlnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
	upperHex   = "0123456789ABCDEF"
	digits     = "0123456789"
)

func (g *gen) user(domain string, seen map[string]int) *User {
	first := firstNames[g.rng.IntN(len(firstNames))]
	last := lastNames[g.rng.IntN(len(lastNames))]
	local := strings.ToLower(first + "." + last)
	seen[local]++
	display := first + " " + last
	if n := seen[local]; n > 1 {
		local = fmt.Sprintf("%s%d", local, n)
		display = fmt.Sprintf("%s %d", display, n)
	}
	smtp := local + "@" + domain
	u := &User{
		ID:             g.guid(),
		DisplayName:    display,
		UPN:            smtp,
		PrimarySMTP:    smtp,
		ProxyAddresses: []string{"SMTP:" + smtp},
		SamAccountName: strings.ToLower(first[:1] + last),
		OU:             domain + "/Users",
	}
	// One user in twenty signs in with a UPN in another suffix than their
	// mail address: the old connector could not match them.
	if g.rng.IntN(20) == 0 {
		u.UPN = local + "@corp." + domain
		u.ProxyAddresses = append(u.ProxyAddresses, "smtp:"+u.UPN)
	}
	if g.rng.IntN(10) == 0 {
		u.ProxyAddresses = append(u.ProxyAddresses, "smtp:"+strings.ToLower(first[:1]+last)+"@"+domain)
	}
	return u
}

func (g *gen) ago(maxDays int) time.Time {
	return g.now.Add(-time.Duration(g.rng.IntN(maxDays*24*3600)) * time.Second)
}

// device adds a partnership of the given profile to u, with the Intune
// record a real tenant would have for it.
func (g *gen) device(o *Org, u *User, prof Profile) {
	first := g.ago(700)
	last := g.now.Add(-time.Duration(g.rng.IntN(36*3600)) * time.Second)
	if last.Before(first) {
		last = first
	}
	p := &Partnership{ClientType: ClientEAS, FirstSync: first, LastSync: last, WhenChanged: last}
	md := &ManagedDevice{
		ID: g.guid(), UserID: u.ID, UserPrincipalName: u.UPN, EmailAddress: u.PrimarySMTP,
		ComplianceState: "compliant", ManagementAgent: "mdm", ExchangeAccessState: "none",
		EnrolledDateTime: first.Add(-time.Duration(g.rng.IntN(30*24)) * time.Hour),
		LastSyncDateTime: g.now.Add(-time.Duration(g.rng.IntN(8*3600)) * time.Second),
		EASActivated:     true,
	}
	enrolled := true
	reported := true
	switch prof {
	case ProfileIPhone, ProfileIPad, ProfileUnenrolled, ProfileAdminAllowed:
		m := iphoneModels[g.rng.IntN(len(iphoneModels))]
		p.DeviceType = "iPhone"
		if prof == ProfileIPad {
			m = ipadModels[g.rng.IntN(len(ipadModels))]
			p.DeviceType = "iPad"
		}
		v := iosVersions[g.rng.IntN(len(iosVersions))]
		p.DeviceID = "Appl" + g.chars(12, upperAlnum)
		p.DeviceModel = m.eas
		p.DeviceOS = "iOS " + v.os + " " + v.build
		p.UserAgent = "Apple-" + m.eas + "/" + strings.ReplaceAll(v.build, "F", "0")
		p.FriendlyName = u.DisplayName + "'s " + p.DeviceType
		md.OperatingSystem, md.OSVersion, md.Model, md.Manufacturer = "iOS", v.os, m.marketing, "Apple"
		if p.DeviceType == "iPad" {
			md.OperatingSystem = "iPadOS"
		}
		enrolled = prof == ProfileIPhone || prof == ProfileIPad
	case ProfileSamsung, ProfileNoncompliant:
		model := samsungModels[g.rng.IntN(len(samsungModels))]
		ver := androidVers[g.rng.IntN(len(androidVers))]
		p.DeviceID = "SEC" + g.chars(13, upperHex)
		p.DeviceType = "SAMSUNG" + strings.ReplaceAll(model, "-", "")
		p.DeviceModel = model
		p.DeviceOS = "Android " + ver + ".0.0"
		p.UserAgent = "Android-SAMSUNG-" + model + "/101.1" + ver + "01"
		md.OperatingSystem, md.OSVersion, md.Model, md.Manufacturer = "Android", ver+".0", model, "samsung"
		if prof == ProfileNoncompliant {
			md.ComplianceState = "noncompliant"
		}
	case ProfileAndroid:
		model := pixelModels[g.rng.IntN(len(pixelModels))]
		ver := androidVers[g.rng.IntN(len(androidVers))]
		p.DeviceID = "androidc" + g.chars(10, digits)
		p.DeviceType = "Android"
		p.DeviceModel = model
		p.DeviceOS = "Android " + ver
		p.UserAgent = "Android-Mail/2024.05.12.633426171"
		md.OperatingSystem, md.OSVersion, md.Model, md.Manufacturer = "Android", ver+".0", model, "Google"
		md.ManagementAgent = "mdm"
		// Enrolled after the partnership appeared, and never reports it.
		md.EnrolledDateTime = first.Add(time.Duration(1+g.rng.IntN(72)) * time.Hour)
		if md.EnrolledDateTime.After(g.now) {
			md.EnrolledDateTime = g.now
		}
		reported = false
	case ProfileOutlook:
		p.DeviceID = g.chars(32, upperHex)
		p.DeviceType = "Outlook"
		p.DeviceModel = "Outlook for iOS and Android"
		p.DeviceOS = "Outlook for iOS and Android 1.0"
		p.UserAgent = "Outlook-iOS-Android/1.0"
		p.ClientType = ClientOutlook
		enrolled = false
	}
	p.FriendlyName = u.DisplayName + "'s " + p.DeviceModel
	if prof == ProfileAdminAllowed {
		u.Allowed = append(u.Allowed, p.DeviceID)
	}
	u.Partnerships = append(u.Partnerships, p)
	if !enrolled {
		return
	}
	md.DeviceName = strings.SplitN(u.DisplayName, " ", 2)[0] + "'s " + md.Model
	if reported {
		md.EASDeviceID = p.DeviceID
	}
	o.AddManaged(md)
}

// laptop adds an Intune-managed Windows laptop: an MDM record with no EAS
// partnership.
func (g *gen) laptop(o *Org, u *User) {
	o.AddManaged(&ManagedDevice{
		ID: g.guid(), UserID: u.ID, UserPrincipalName: u.UPN, EmailAddress: u.PrimarySMTP,
		DeviceName: "DESKTOP-" + g.chars(7, upperAlnum), OperatingSystem: "Windows", OSVersion: "10.0.22631.4169",
		Model: "Latitude 7440", Manufacturer: "Dell Inc.", ComplianceState: "compliant", ManagementAgent: "mdm",
		ExchangeAccessState: "none", EnrolledDateTime: g.ago(500), LastSyncDateTime: g.now.Add(-time.Hour),
	})
}
