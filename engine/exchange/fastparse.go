package exchange

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The scripts write one flat JSON object a line, in printable ASCII
// (everything else escaped as \uXXXX), with string, number, boolean and
// null values and arrays of strings. fastRecord decodes exactly that
// shape without reflection, several times faster than encoding/json: a
// full inventory of 100,000 mailboxes is some 400,000 lines. Anything
// else it declines (ok false) and the caller falls back to encoding/json,
// which then decides, error messages included. Keys match as
// encoding/json matches them: exactly, else ignoring case.

// fastKind is how a record field takes its value.
type fastKind uint8

const (
	fastString fastKind = iota
	fastCommon          // a string that repeats across the organisation: interned
	fastStrings
	fastTime
	fastInt
	fastBool
	fastSkip // a field fastRecord leaves to encoding/json (Fields)
)

type fastField struct {
	kind fastKind
	set  func(r *record) any // the field's address
}

// fastFields are record's fields by their JSON name, lower-cased.
var fastFields = func() map[string]fastField {
	s := func(f func(r *record) *flexString) fastField {
		return fastField{fastString, func(r *record) any { return f(r) }}
	}
	ss := func(f func(r *record) *flexStrings) fastField {
		return fastField{fastStrings, func(r *record) any { return f(r) }}
	}
	common := func(f func(r *record) *flexString) fastField {
		return fastField{fastCommon, func(r *record) any { return f(r) }}
	}
	tm := func(f func(r *record) *flexTime) fastField {
		return fastField{fastTime, func(r *record) any { return f(r) }}
	}
	in := func(f func(r *record) **flexInt) fastField {
		return fastField{fastInt, func(r *record) any { return f(r) }}
	}
	return map[string]fastField{
		"script":                     s(func(r *record) *flexString { return &r.Script }),
		"defaultaccesslevel":         s(func(r *record) *flexString { return &r.DefaultAccessLevel }),
		"adminmailrecipients":        ss(func(r *record) *flexStrings { return &r.AdminMailRecipients }),
		"usermailinsert":             s(func(r *record) *flexString { return &r.UserMailInsert }),
		"name":                       s(func(r *record) *flexString { return &r.Name }),
		"characteristic":             s(func(r *record) *flexString { return &r.Characteristic }),
		"querystring":                s(func(r *record) *flexString { return &r.QueryString }),
		"accesslevel":                s(func(r *record) *flexString { return &r.AccessLevel }),
		"mailbox_dn":                 s(func(r *record) *flexString { return &r.MailboxDN }),
		"identity":                   s(func(r *record) *flexString { return &r.Identity }),
		"deviceid":                   s(func(r *record) *flexString { return &r.DeviceID }),
		"devicetype":                 common(func(r *record) *flexString { return &r.DeviceType }),
		"devicemodel":                common(func(r *record) *flexString { return &r.DeviceModel }),
		"deviceos":                   common(func(r *record) *flexString { return &r.DeviceOS }),
		"deviceuseragent":            common(func(r *record) *flexString { return &r.DeviceUserAgent }),
		"clienttype":                 common(func(r *record) *flexString { return &r.ClientType }),
		"deviceaccessstate":          common(func(r *record) *flexString { return &r.DeviceAccessState }),
		"deviceaccessstatereason":    common(func(r *record) *flexString { return &r.DeviceAccessStateReason }),
		"firstsynctime":              tm(func(r *record) *flexTime { return &r.FirstSyncTime }),
		"whenchangedutc":             tm(func(r *record) *flexTime { return &r.WhenChangedUTC }),
		"whenchanged":                tm(func(r *record) *flexTime { return &r.WhenChanged }),
		"lastsuccesssync":            tm(func(r *record) *flexTime { return &r.LastSuccessSync }),
		"distinguishedname":          s(func(r *record) *flexString { return &r.DistinguishedName }),
		"primarysmtpaddress":         s(func(r *record) *flexString { return &r.PrimarySmtpAddress }),
		"userprincipalname":          s(func(r *record) *flexString { return &r.UserPrincipalName }),
		"emailaddresses":             ss(func(r *record) *flexStrings { return &r.EmailAddresses }),
		"activesyncalloweddeviceids": ss(func(r *record) *flexStrings { return &r.ActiveSyncAllowedDeviceIDs }),
		"activesyncblockeddeviceids": ss(func(r *record) *flexStrings { return &r.ActiveSyncBlockedDeviceIDs }),
		"id":                         s(func(r *record) *flexString { return &r.ID }),
		"ok":                         {fastBool, func(r *record) any { return &r.OK }},
		"error":                      s(func(r *record) *flexString { return &r.Error }),
		"code":                       s(func(r *record) *flexString { return &r.Code }),
		"count":                      in(func(r *record) **flexInt { return &r.Count }),
		"level":                      s(func(r *record) *flexString { return &r.Level }),
		"fields":                     {fastSkip, nil},
		"fqdn":                       s(func(r *record) *flexString { return &r.Fqdn }),
		"site":                       s(func(r *record) *flexString { return &r.Site }),
		"serverrole":                 s(func(r *record) *flexString { return &r.ServerRole }),
		"admindisplayversion":        s(func(r *record) *flexString { return &r.AdminDisplayVersion }),
		"message":                    s(func(r *record) *flexString { return &r.Message }),
		"server":                     s(func(r *record) *flexString { return &r.Server }),
		"ps":                         s(func(r *record) *flexString { return &r.PS }),
		"exchange":                   s(func(r *record) *flexString { return &r.Exchange }),
		"cmdlets":                    ss(func(r *record) *flexStrings { return &r.Cmdlets }),
		"devices":                    in(func(r *record) **flexInt { return &r.Devices }),
		"mailboxes":                  in(func(r *record) **flexInt { return &r.Mailboxes }),
		"edits":                      in(func(r *record) **flexInt { return &r.Edits }),
	}
}()

// fastScanner reads one line.
type fastScanner struct {
	b   []byte
	i   int
	buf []byte   // scratch for unescaping
	in  interner // nil: every string is its own
}

// interner shares the equal strings of one output: line types, device
// types, models, operating systems and user agents repeat across a whole
// organisation, and a copy of each per partnership is 150,000 small
// allocations apiece.
type interner map[string]string

// maxInterned bounds an interner: an organisation has some hundreds of
// models and user agents, not tens of thousands; past the bound strings
// are kept as they are.
const maxInterned = 4096

// of returns b as a string, the same one for equal bytes.
func (in interner) of(b []byte) string {
	if in == nil {
		return string(b)
	}
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in) < maxInterned {
		in[s] = s
	}
	return s
}

func (s *fastScanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\r' || s.b[s.i] == '\n') {
		s.i++
	}
}

func (s *fastScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string in printable ASCII with JSON escapes. It declines
// (ok false) other bytes and escapes of UTF-16 surrogates.
func (s *fastScanner) str() (string, bool) {
	b, ok := s.raw()
	return string(b), ok
}

// raw reads a string like str, returning its bytes, valid until the next
// call.
func (s *fastScanner) raw() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20 || c >= 0x7f:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// escaped finishes a string that has escapes.
func (s *fastScanner) escaped(start int) ([]byte, bool) {
	out := append(s.buf[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			s.buf = out
			return out, true
		case c < 0x20 || c >= 0x7f:
			return nil, false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, false
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if s.i+4 > len(s.b) {
				return nil, false
			}
			n, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 16)
			if err != nil || (n >= 0xd800 && n < 0xe000) {
				return nil, false // surrogates: encoding/json pairs them
			}
			out = utf8.AppendRune(out, rune(n))
			s.i += 4
		default:
			return nil, false
		}
	}
	return nil, false
}

// literal reads a number, true, false or null as its text.
func (s *fastScanner) literal() (string, bool) {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			break
		}
		s.i++
	}
	v := string(s.b[start:s.i])
	switch {
	case v == "true" || v == "false" || v == "null":
		return v, true
	case v == "":
		return "", false
	}
	// A number as JSON writes it: -?int frac? exp?; anything else declines.
	j := 0
	if v[j] == '-' {
		j++
	}
	digits := func() int {
		k := j
		for j < len(v) && v[j] >= '0' && v[j] <= '9' {
			j++
		}
		return j - k
	}
	if n := digits(); n == 0 || (n > 1 && v[j-n] == '0') {
		return "", false
	}
	if j < len(v) && v[j] == '.' {
		j++
		if digits() == 0 {
			return "", false
		}
	}
	if j < len(v) && (v[j] == 'e' || v[j] == 'E') {
		j++
		if j < len(v) && (v[j] == '+' || v[j] == '-') {
			j++
		}
		if digits() == 0 {
			return "", false
		}
	}
	return v, j == len(v)
}

// fastRecord decodes a flat object line into r (which it resets). ok is
// false when the line is not of the simple shape; r is then undefined.
func fastRecord(line []byte, r *record, scratch *[]byte, in interner) (ok bool) {
	*r = record{}
	s := fastScanner{b: line, buf: *scratch, in: in}
	defer func() { *scratch = s.buf }()
	s.space()
	if s.peek() != '{' {
		return false
	}
	s.i++
	s.space()
	if s.peek() == '}' {
		s.i++
		s.space()
		return s.i == len(s.b)
	}
	for {
		s.space()
		key, ok := s.raw()
		if !ok {
			return false
		}
		s.space()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.space()
		if !s.value(r, key) {
			return false
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			s.space()
			return s.i == len(s.b)
		}
		return false
	}
}

// value reads one value into the field key names (key is only valid
// until the scanner reads on).
func (s *fastScanner) value(r *record, key []byte) bool {
	if string(key) == "t" { // T's tag; "T" folds to it
		b, ok := s.raw()
		r.T = s.in.of(b)
		return ok
	}
	for _, c := range key {
		if c >= 0x80 {
			return false // encoding/json folds some non-ASCII letters (ſ, K) to ASCII ones
		}
	}
	f, known := fastFields[string(key)]
	if !known {
		lower := strings.ToLower(string(key))
		if lower == "t" {
			b, ok := s.raw()
			r.T = s.in.of(b)
			return ok
		}
		f, known = fastFields[lower]
	}
	if !known {
		return s.skip()
	}
	switch f.kind {
	case fastSkip:
		return false // an object: encoding/json's business
	case fastCommon:
		if s.peek() == '"' {
			b, ok := s.raw()
			if ok {
				*f.set(r).(*flexString) = flexString(s.in.of(b))
			}
			return ok
		}
	case fastStrings:
		p := f.set(r).(*flexStrings)
		if s.peek() != '[' {
			v, ok := s.scalar()
			if !ok {
				return false
			}
			if v.null {
				*p = nil
			} else {
				*p = []string{v.text}
			}
			return true
		}
		s.i++
		list := []string{}
		s.space()
		if s.peek() == ']' {
			s.i++
			*p = list
			return true
		}
		for {
			s.space()
			v, ok := s.scalar()
			if !ok {
				return false
			}
			list = append(list, v.text) // null in a list reads as ""
			s.space()
			switch s.peek() {
			case ',':
				s.i++
				continue
			case ']':
				s.i++
				*p = list
				return true
			}
			return false
		}
	}
	v, ok := s.scalar()
	if !ok {
		return false
	}
	switch f.kind {
	case fastString, fastCommon:
		*f.set(r).(*flexString) = flexString(v.text)
	case fastTime:
		if v.null {
			*f.set(r).(*flexTime) = flexTime{}
			return true
		}
		if !v.quoted {
			return false
		}
		t, err := parseTime(v.text)
		if err != nil {
			return false
		}
		*f.set(r).(*flexTime) = flexTime(t)
	case fastInt:
		p := f.set(r).(**flexInt)
		if v.null {
			*p = nil
			return true
		}
		n, err := strconv.Atoi(v.text)
		if err != nil {
			return false
		}
		fi := flexInt(n)
		*p = &fi
	case fastBool:
		p := f.set(r).(*flexBool)
		switch strings.ToLower(v.text) {
		case "true", "1":
			*p = true
		case "false", "0", "":
			*p = false
		default:
			return false
		}
	}
	return true
}

// scalarValue is a scalar as flexString reads it.
type scalarValue struct {
	text   string
	quoted bool
	null   bool
}

// scalar reads a string, number, boolean or null as flexString does:
// booleans as True and False, numbers by their digits, null as empty.
func (s *fastScanner) scalar() (scalarValue, bool) {
	if s.peek() == '"' {
		v, ok := s.str()
		return scalarValue{text: v, quoted: true}, ok
	}
	v, ok := s.literal()
	if !ok {
		return scalarValue{}, false
	}
	switch v {
	case "null":
		return scalarValue{null: true}, true
	case "true":
		return scalarValue{text: "True"}, true
	case "false":
		return scalarValue{text: "False"}, true
	}
	return scalarValue{text: v}, true
}

// skip passes over the value of a key record does not have: a scalar or a
// list of scalars; anything deeper declines.
func (s *fastScanner) skip() bool {
	if s.peek() != '[' {
		_, ok := s.scalar()
		return ok
	}
	s.i++
	s.space()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		s.space()
		if _, ok := s.scalar(); !ok {
			return false
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case ']':
			s.i++
			return true
		}
		return false
	}
}
