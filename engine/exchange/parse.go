package exchange

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// record is one JSON object a script writes on a line. The field named t
// says what it is:
//
//	begin    {"t":"begin","script":"inventory/1"}
//	org      Get-ActiveSyncOrganizationSettings: DefaultAccessLevel, AdminMailRecipients, UserMailInsert
//	rule     Get-ActiveSyncDeviceAccessRule: Name, Characteristic, QueryString, AccessLevel
//	device   Get-MobileDevice: Identity, DeviceId, DeviceType, DeviceModel, DeviceOS, DeviceUserAgent,
//	         ClientType, DeviceAccessState, DeviceAccessStateReason, FirstSyncTime, WhenChangedUTC,
//	         and mailbox_dn, the DN of the mailbox holding the partnership
//	mailbox  Get-CASMailbox: DistinguishedName, PrimarySmtpAddress, EmailAddresses (smtp: ones),
//	         ActiveSyncAllowedDeviceIDs, ActiveSyncBlockedDeviceIDs; UserPrincipalName from Get-Mailbox
//	stat     Get-MobileDeviceStatistics: Identity, LastSuccessSync
//	result   {"t":"result","id":"e1","ok":false,"error":"…"}: one Set-CASMailbox
//	result   {"t":"result","ok":false,"code":"ObjectNotFound","error":"…"}: an admin script's outcome,
//	         with count (partnerships or rules changed), level (the org default) or fields (statistics)
//	probe    {"t":"probe","server":…,"ps":…,"exchange":…,"cmdlets":[…]}
//	server   Get-ExchangeServer: Name, Fqdn, Site, ServerRole, AdminDisplayVersion
//	error    {"t":"error","mailbox_dn":…,"message":…}: a cmdlet failed for one object
//	warning  {"t":"warning","message":…}
//	end      {"t":"end",…counts}: the script got to its end
//
// Keys match case-insensitively. Values may come in Windows PowerShell
// 5.1's forms: dates as "\/Date(ms)\/", enums as numbers, a single value
// where a list is expected.
type record struct {
	T      string     `json:"t"`
	Script flexString `json:"script"`

	DefaultAccessLevel  flexString  `json:"DefaultAccessLevel"`
	AdminMailRecipients flexStrings `json:"AdminMailRecipients"`
	UserMailInsert      flexString  `json:"UserMailInsert"`

	Name           flexString `json:"Name"`
	Characteristic flexString `json:"Characteristic"`
	QueryString    flexString `json:"QueryString"`
	AccessLevel    flexString `json:"AccessLevel"`

	MailboxDN               flexString `json:"mailbox_dn"`
	Identity                flexString `json:"Identity"`
	DeviceID                flexString `json:"DeviceId"`
	DeviceType              flexString `json:"DeviceType"`
	DeviceModel             flexString `json:"DeviceModel"`
	DeviceOS                flexString `json:"DeviceOS"`
	DeviceUserAgent         flexString `json:"DeviceUserAgent"`
	ClientType              flexString `json:"ClientType"`
	DeviceAccessState       flexString `json:"DeviceAccessState"`
	DeviceAccessStateReason flexString `json:"DeviceAccessStateReason"`
	FirstSyncTime           flexTime   `json:"FirstSyncTime"`
	WhenChangedUTC          flexTime   `json:"WhenChangedUTC"`
	WhenChanged             flexTime   `json:"WhenChanged"`
	LastSuccessSync         flexTime   `json:"LastSuccessSync"`

	DistinguishedName          flexString  `json:"DistinguishedName"`
	PrimarySmtpAddress         flexString  `json:"PrimarySmtpAddress"`
	UserPrincipalName          flexString  `json:"UserPrincipalName"`
	EmailAddresses             flexStrings `json:"EmailAddresses"`
	ActiveSyncAllowedDeviceIDs flexStrings `json:"ActiveSyncAllowedDeviceIDs"`
	ActiveSyncBlockedDeviceIDs flexStrings `json:"ActiveSyncBlockedDeviceIDs"`

	ID     flexString            `json:"id"`
	OK     flexBool              `json:"ok"`
	Error  flexString            `json:"error"`
	Code   flexString            `json:"code"`
	Count  *flexInt              `json:"count"`
	Level  flexString            `json:"level"`
	Fields map[string]flexString `json:"fields"`

	Fqdn                flexString `json:"Fqdn"`
	Site                flexString `json:"Site"`
	ServerRole          flexString `json:"ServerRole"`
	AdminDisplayVersion flexString `json:"AdminDisplayVersion"`

	Message flexString `json:"message"`

	Server   flexString  `json:"server"`
	PS       flexString  `json:"ps"`
	Exchange flexString  `json:"exchange"`
	Cmdlets  flexStrings `json:"cmdlets"`

	Devices   *flexInt `json:"devices"`
	Mailboxes *flexInt `json:"mailboxes"`
	Edits     *flexInt `json:"edits"`
}

// lineParser decodes stdout lines into one reused record.
type lineParser struct {
	rec     record
	scratch []byte   // fastRecord's
	common  interner // fastRecord's; nil until the first line
}

// parse decodes one stdout line, an object or an array of objects
// (ConvertTo-Json of a collection), and hands each record to each; the
// record is only valid during the call. A blank line yields nothing. A
// UTF-8 byte order mark in front is ignored.
func (p *lineParser) parse(line []byte, each func(*record)) error {
	line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil
	}
	switch line[0] {
	case '{':
		if p.common == nil {
			p.common = interner{}
		}
		if fastRecord(line, &p.rec, &p.scratch, p.common) {
			each(&p.rec)
			return nil
		}
		p.rec = record{}
		if err := json.Unmarshal(line, &p.rec); err != nil {
			return err
		}
		each(&p.rec)
		return nil
	case '[':
		var rs []record
		if err := json.Unmarshal(line, &rs); err != nil {
			return err
		}
		for i := range rs {
			each(&rs[i])
		}
		return nil
	}
	return errors.New("not a JSON object")
}

// flexString takes a JSON string, number or boolean as its text; null is
// empty. Numbers keep their digits, so a numeric enum can be mapped later.
type flexString string

// UnmarshalJSON reads a string, number or boolean.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case string(b) == "true":
		*f = "True"
	case string(b) == "false":
		*f = "False"
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9':
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n.String())
	default:
		return fmt.Errorf("want a string, got %.20s", b)
	}
	return nil
}

// flexStrings takes a JSON array of scalars, a single scalar (PowerShell
// unrolls a one-element collection), null, or PowerShell's
// {"value":[…],"Count":n} wrapper.
type flexStrings []string

// UnmarshalJSON reads a list, a single value or a wrapper.
func (f *flexStrings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = nil
		return nil
	case b[0] == '[':
		var items []flexString
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			out = append(out, string(it))
		}
		*f = out
		return nil
	case b[0] == '{':
		var w struct {
			Value *flexStrings `json:"value"`
		}
		if err := json.Unmarshal(b, &w); err != nil || w.Value == nil {
			return fmt.Errorf("want a list, got an object")
		}
		*f = *w.Value
		return nil
	}
	var one flexString
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*f = []string{string(one)}
	return nil
}

// flexTime takes an ISO 8601 date (with or without zone; none means UTC),
// Windows PowerShell 5.1's "\/Date(ms)\/" or "\/Date(ms+hhmm)\/", its
// {"value":"\/Date(ms)\/",…} wrapper, an empty string or null.
type flexTime time.Time

var msDateRE = regexp.MustCompile(`^/Date\((-?\d+)([+-]\d{4})?\)/$`)

var isoLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05"}

// UnmarshalJSON reads a date in any of the forms above.
func (f *flexTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = flexTime{}
		return nil
	}
	if b[0] == '{' {
		var w struct {
			Value *flexTime `json:"value"`
		}
		if err := json.Unmarshal(b, &w); err != nil || w.Value == nil {
			return fmt.Errorf("want a date, got an object")
		}
		*f = *w.Value
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a date, got %.30s", b)
	}
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	*f = flexTime(t)
	return nil
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if m := msDateRE.FindStringSubmatch(s); m != nil {
		ms, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("date %q: %w", s, err)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q is neither ISO 8601 nor /Date(ms)/", s)
}

// flexInt takes a JSON number or a numeric string.
type flexInt int

// UnmarshalJSON reads a number.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	n, err := strconv.Atoi(string(s))
	if err != nil {
		return fmt.Errorf("want a number, got %q", s)
	}
	*f = flexInt(n)
	return nil
}

// flexBool takes true/false, "True"/"False" or 1/0.
type flexBool bool

// UnmarshalJSON reads a boolean.
func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	switch strings.ToLower(string(s)) {
	case "true", "1":
		*f = true
	case "false", "0", "":
		*f = false
	default:
		return fmt.Errorf("want a boolean, got %q", s)
	}
	return nil
}

// Exchange's enums by number, as Windows PowerShell 5.1's ConvertTo-Json
// writes them when a script forgets [string]. Values not listed pass
// through as their digits.
var (
	accessStates = []string{"Unknown", "Allowed", "Blocked", "Quarantined", "DeviceDiscovery"}
	// DeviceAccessStateReason: 0–12, then 51–53.
	accessReasons = map[int]string{0: "Unknown", 1: "Global", 2: "Individual", 3: "DeviceRule", 4: "Upgrade", 5: "Policy",
		6: "UserAgentsChanges", 7: "RecentCommands", 8: "Watsons", 9: "OutOfBudgets", 10: "SyncCommands",
		11: "EnableNotificationEmail", 12: "CommandFrequency", 51: "ExternallyManaged", 52: "ExternalCompliance", 53: "ExternalEnrollment"}
	accessLevels    = []string{"Allow", "Block", "Quarantine"}
	characteristics = []string{"DeviceType", "DeviceModel", "DeviceOS", "UserAgent", "XMSWLHeader"}
)

// enumName maps a numeric enum value to its name; anything else passes
// through unchanged.
func enumName(v flexString, names []string) string {
	if n, err := strconv.Atoi(string(v)); err == nil && n >= 0 && n < len(names) {
		return names[n]
	}
	return string(v)
}

func reasonName(v flexString) string {
	if n, err := strconv.Atoi(string(v)); err == nil {
		if name, ok := accessReasons[n]; ok {
			return name
		}
	}
	return string(v)
}
