package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"easgate/engine"
)

// The bulk buckets hold values in a compact binary form. The first byte of a
// value is its format version; fields follow in declaration order: strings
// as a uvarint header and bytes (or a back-reference to an equal earlier
// string of the same value, see enc.str), integers as zigzag varints, times
// as a tag byte (0 zero, 1 an instant) and Unix seconds and nanoseconds,
// string slices as a count plus one (0 = nil, so nil and empty survive a
// round trip), optional structs as a presence byte. A journal entry leaves
// out its Device when it is the key of its change, as the applier writes it.
//
// Why not JSON (BenchmarkCodec, on the generated device records): 451 bytes
// a record instead of 973; encoding 0.2 µs and no allocation instead of
// 2.8 µs and 8; decoding 0.4 µs and one allocation (the copy of the value,
// which every string field then shares) instead of 7 µs and 22. At 150,000
// records that is the difference between a Load of about half a second and
// several seconds on two cores. Load decodes from the memory map itself
// and makes each string on its own (see loadStrings).
//
// Evolving a type: when an engine type gains a field, append it to the
// encoder, raise that type's version constant, and teach the decoder to read
// the new field only for values of the new version. Old values keep decoding,
// with the new field zero. TestCodecCarriesEveryField fails until that is
// done; TestCodecGolden keeps version 1 values decodable.
//
// Times decode in UTC: the instant is exact to the nanosecond, the zone is
// not kept and monotonic clock readings are dropped. The engine works in UTC
// and compares records with ==, where a zone (even a fixed one made afresh
// per decode) would make an unchanged record look changed.

// Format versions of encoded values.
const (
	recordV1  = 1
	mdmV1     = 1
	mailboxV1 = 1
	linkV1    = 1
	ownedV1   = 1
	ownedV2   = 2 // adds Grandfathered
	journalV1 = 1
	journalV2 = 2 // adds Change.Grandfather, after Message
)

// errShort and friends describe undecodable values; callers wrap them with
// the bucket and key and turn them into ErrCorrupt.
var (
	errShort    = errors.New("value ends early")
	errTrailing = errors.New("value has trailing bytes")
	errTimeTag  = errors.New("bad time tag")
)

// versionError reports a value version this build does not know.
func versionError(kind string, v byte) error {
	return fmt.Errorf("%s value has format version %d, this build reads up to 1", kind, v)
}

// maxRefs is how many earlier strings of a value a string may refer back to.
const maxRefs = 48

// enc appends encoded fields to a byte slice. A string equal to an earlier
// non-empty string of the same value is written as a back-reference to it
// (PrimarySMTP repeats the mailbox, Email the UPN, a journal entry's message
// its change's reason), which saves a fifth of a journal entry.
type enc struct {
	b    []byte
	seen [maxRefs]string
	n    int
}

func (e *enc) byte1(v byte)     { e.b = append(e.b, v) }
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }

// str writes a string: a uvarint header whose low bit says whether a
// literal of header>>1 bytes follows (0) or the string is earlier string
// number header>>1 of this value (1).
func (e *enc) str(s string) {
	if s == "" {
		e.uvarint(0)
		return
	}
	for i := range e.n {
		if e.seen[i] == s {
			e.uvarint(uint64(i)<<1 | 1)
			return
		}
	}
	e.uvarint(uint64(len(s)) << 1)
	e.b = append(e.b, s...)
	if e.n < maxRefs {
		e.seen[e.n] = s
		e.n++
	}
}

func (e *enc) strs(ss []string) {
	if ss == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(ss)) + 1)
	for _, s := range ss {
		e.str(s)
	}
}

func (e *enc) boolean(v bool) {
	if v {
		e.byte1(1)
		return
	}
	e.byte1(0)
}

func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.byte1(0)
		return
	}
	e.byte1(1)
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

// encoded is what a decoder reads: a string, or bytes that may be bbolt's
// memory map.
type encoded interface{ ~string | ~[]byte }

// dec reads fields from a string or from bytes.
//
// Without ls, a decoder of a string returns strings that share its memory,
// so decoding a value costs one allocation for all its text: the caller's
// copy of the value. Load's decoders read bytes in the memory map and have
// ls make every string, as a copy (from bytes, string(b) copies too, so a
// string can alias the input only through raw). raw peeks at bytes without
// copying, for a filter.
type dec[S encoded] struct {
	s    S
	i    int
	err  error
	ls   *loadStrings
	seen [maxRefs]S
	n    int
}

// reset starts decoding the value s, with the same ls.
func (d *dec[S]) reset(s S) {
	d.s, d.i, d.err, d.n = s, 0, nil, 0
}

func (d *dec[S]) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *dec[S]) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.i >= len(d.s) {
		d.fail(errShort)
		return 0
	}
	b := d.s[d.i]
	d.i++
	return b
}

func (d *dec[S]) uvarint() uint64 {
	var x uint64
	var shift uint
	for n := 0; n < binary.MaxVarintLen64; n++ {
		b := d.byte1()
		if d.err != nil {
			return 0
		}
		if b < 0x80 {
			if n == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<shift
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	d.fail(errors.New("varint overflows 64 bits"))
	return 0
}

func (d *dec[S]) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *dec[S]) int() int { return int(d.varint()) }

// next reads a string: either the bytes of a literal (none for an empty
// string) or, with ref >= 0, the number of the earlier string it repeats.
func (d *dec[S]) next() (lit S, ref int) {
	h := d.uvarint()
	if d.err != nil || h == 0 {
		return lit, -1
	}
	if h&1 == 1 {
		if i := h >> 1; i < uint64(d.n) {
			return lit, int(i)
		}
		d.fail(errors.New("bad string reference"))
		return lit, -1
	}
	n := h >> 1
	if n > uint64(len(d.s)-d.i) {
		d.fail(errShort)
		return lit, -1
	}
	lit = d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return lit, -1
}

// remember numbers a literal for later back-references: lit as read, s as
// handed out.
func (d *dec[S]) remember(lit S, s string) {
	if d.n < maxRefs {
		d.seen[d.n] = lit
		if d.ls != nil {
			d.ls.seen[d.n] = s
		}
		d.n++
	}
}

// raw reads a string as a slice of the input, for a decoder without ls
// (a back-reference from str to a string raw read would be empty).
func (d *dec[S]) raw() S {
	lit, ref := d.next()
	if ref >= 0 {
		return d.seen[ref]
	}
	if len(lit) > 0 {
		d.remember(lit, "")
	}
	return lit
}

// str reads a string field.
func (d *dec[S]) str() string { return d.text(false) }

// sym reads a string field whose few values repeat across the bucket (a
// device model, an access state): Load interns it.
func (d *dec[S]) sym() string { return d.text(true) }

// text reads a string field and hands it out, made by ls if there is one.
// A back-reference resolves to the string handed out for the literal it
// refers to, so a repeated field costs no second copy.
func (d *dec[S]) text(sym bool) string {
	lit, ref := d.next()
	switch {
	case ref >= 0 && d.ls != nil:
		return d.ls.seen[ref]
	case ref >= 0:
		return string(d.seen[ref])
	case len(lit) == 0:
		return ""
	}
	var s string
	switch {
	case d.ls == nil:
		s = string(lit) // no copy when S is string
	case sym:
		s = d.ls.sym([]byte(lit)) // no copy: Load's S is []byte
	default:
		s = d.ls.field([]byte(lit))
	}
	d.remember(lit, s)
	return s
}

func (d *dec[S]) strs() []string {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	n--
	// Each string takes at least one byte, which bounds a corrupt count.
	if n > uint64(len(d.s)-d.i) {
		d.fail(errShort)
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *dec[S]) boolean() bool {
	switch d.byte1() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(errors.New("bad boolean"))
	return false
}

func (d *dec[S]) time() time.Time {
	switch d.byte1() {
	case 0:
		return time.Time{}
	case 1:
	default:
		d.fail(errTimeTag)
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.fail(errors.New("bad nanoseconds"))
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// done reports the first error, or trailing bytes.
func (d *dec[S]) done() error {
	if d.err == nil && d.i != len(d.s) {
		return errTrailing
	}
	return d.err
}

// version reads the version byte and checks it against the newest known.
func (d *dec[S]) version(kind string, newest byte) byte {
	v := d.byte1()
	if d.err == nil && (v == 0 || v > newest) {
		d.fail(versionError(kind, v))
	}
	return v
}

func appendRecord(b []byte, r *engine.DeviceRecord) []byte {
	e := enc{b: b}
	e.byte1(recordV1)
	e.str(r.Mailbox)
	e.str(r.PrimarySMTP)
	e.str(r.Identity)
	e.str(r.DeviceID)
	e.str(r.DeviceType)
	e.str(r.DeviceModel)
	e.str(r.DeviceOS)
	e.str(r.UserAgent)
	e.str(r.ClientType)
	e.str(string(r.AccessState))
	e.str(r.AccessReason)
	e.time(r.FirstSync)
	e.time(r.LastSync)
	e.time(r.WhenChanged)
	e.str(r.MDMID)
	e.str(string(r.Link))
	e.str(string(r.Compliance))
	e.str(r.Suggested)
	e.str(string(r.Decision.Access))
	e.boolean(r.Decision.Exempt)
	e.str(string(r.Decision.Code))
	e.str(r.Decision.Reason)
	e.time(r.Since)
	e.time(r.Notify.FirstSent)
	e.time(r.Notify.LastSent)
	e.varint(int64(r.Notify.Count))
	e.str(r.Notify.LastError)
	e.time(r.Notify.LastTried)
	e.boolean(r.InScope)
	return e.b
}

// decodeString decodes the value s with read; its strings share s's memory.
func decodeString[V any](s string, v *V, read func(*dec[string], *V)) error {
	d := dec[string]{s: s}
	read(&d, v)
	return d.done()
}

func decodeRecord(s string, r *engine.DeviceRecord) error { return decodeString(s, r, readRecord) }

// readRecord reads a device record's fields; the caller checks d.done. It
// and its siblings are the one statement of each type's field order, for
// decodeRecord and for Load.
func readRecord[S encoded](d *dec[S], r *engine.DeviceRecord) {
	d.version("device record", recordV1)
	r.Mailbox = d.str()
	r.PrimarySMTP = d.str()
	r.Identity = d.str()
	r.DeviceID = d.str()
	r.DeviceType = d.sym()
	r.DeviceModel = d.sym()
	r.DeviceOS = d.sym()
	r.UserAgent = d.sym()
	r.ClientType = d.sym()
	r.AccessState = engine.AccessState(d.sym())
	r.AccessReason = d.sym()
	r.FirstSync = d.time()
	r.LastSync = d.time()
	r.WhenChanged = d.time()
	r.MDMID = d.str()
	r.Link = engine.LinkKind(d.sym())
	r.Compliance = engine.Compliance(d.sym())
	r.Suggested = d.str()
	r.Decision.Access = engine.Access(d.sym())
	r.Decision.Exempt = d.boolean()
	r.Decision.Code = engine.ReasonCode(d.sym())
	r.Decision.Reason = d.str()
	r.Since = d.time()
	r.Notify.FirstSent = d.time()
	r.Notify.LastSent = d.time()
	r.Notify.Count = d.int()
	r.Notify.LastError = d.sym()
	r.Notify.LastTried = d.time()
	r.InScope = d.boolean()
}

func appendMDM(b []byte, m *engine.MDMDevice) []byte {
	e := enc{b: b}
	e.byte1(mdmV1)
	e.str(m.ID)
	e.str(m.UserID)
	e.str(m.UserPrincipalName)
	e.str(m.Email)
	e.str(m.DeviceName)
	e.str(m.OperatingSystem)
	e.str(m.OSVersion)
	e.str(m.Model)
	e.str(m.Manufacturer)
	e.str(m.EASDeviceID)
	e.boolean(m.EASActivated)
	e.str(string(m.Compliance))
	e.str(m.ManagementAgent)
	e.str(m.ExchangeAccessState)
	e.time(m.Enrolled)
	e.time(m.LastSync)
	return e.b
}

func decodeMDM(s string, m *engine.MDMDevice) error { return decodeString(s, m, readMDM) }

func readMDM[S encoded](d *dec[S], m *engine.MDMDevice) {
	d.version("mdm record", mdmV1)
	m.ID = d.str()
	m.UserID = d.str()
	m.UserPrincipalName = d.str()
	m.Email = d.str()
	m.DeviceName = d.str()
	m.OperatingSystem = d.sym()
	m.OSVersion = d.sym()
	m.Model = d.sym()
	m.Manufacturer = d.sym()
	m.EASDeviceID = d.str()
	m.EASActivated = d.boolean()
	m.Compliance = engine.Compliance(d.sym())
	m.ManagementAgent = d.sym()
	m.ExchangeAccessState = d.sym()
	m.Enrolled = d.time()
	m.LastSync = d.time()
}

func appendMailbox(b []byte, m *engine.Mailbox) []byte {
	e := enc{b: b}
	e.byte1(mailboxV1)
	e.str(m.UPN)
	e.str(m.PrimarySMTP)
	e.strs(m.Addresses)
	e.strs(m.Allowed)
	e.strs(m.Blocked)
	return e.b
}

func decodeMailbox(s string, m *engine.Mailbox) error { return decodeString(s, m, readMailbox) }

func readMailbox[S encoded](d *dec[S], m *engine.Mailbox) {
	d.version("mailbox", mailboxV1)
	m.UPN = d.str()
	m.PrimarySMTP = d.str()
	m.Addresses = d.strs()
	m.Allowed = d.strs()
	m.Blocked = d.strs()
}

func appendLink(b []byte, l *engine.Link) []byte {
	e := enc{b: b}
	e.byte1(linkV1)
	e.str(string(l.Device))
	e.str(l.MDMID)
	e.str(string(l.Kind))
	e.time(l.Created)
	e.str(l.By)
	return e.b
}

func decodeLink(s string, l *engine.Link) error { return decodeString(s, l, readLink) }

func readLink[S encoded](d *dec[S], l *engine.Link) {
	d.version("link", linkV1)
	l.Device = engine.DeviceKey(d.str())
	l.MDMID = d.str()
	l.Kind = engine.LinkKind(d.sym())
	l.Created = d.time()
	l.By = d.sym()
}

func appendOwned(b []byte, o *engine.OwnedEntry) []byte {
	e := enc{b: b}
	e.byte1(ownedV2)
	e.str(o.Mailbox)
	e.str(o.DeviceID)
	e.str(string(o.List))
	e.time(o.Added)
	e.str(o.RunID)
	e.boolean(o.Grandfathered)
	return e.b
}

func decodeOwned(s string, o *engine.OwnedEntry) error { return decodeString(s, o, readOwned) }

func readOwned[S encoded](d *dec[S], o *engine.OwnedEntry) {
	v := d.version("owned entry", ownedV2)
	o.Mailbox = d.str()
	o.DeviceID = d.str()
	o.List = engine.List(d.sym())
	o.Added = d.time()
	o.RunID = d.sym()
	if v >= ownedV2 {
		o.Grandfathered = d.boolean()
	}
}

// Journal device modes: the Device field is written out, or it is the key of
// the entry's change (as the applier writes it) and left out.
const (
	deviceLiteral    = 0
	deviceFromChange = 1
)

// appendJournal encodes an entry without its Seq, which is the key. RunID
// and the device come first so that journalHead can filter without a full
// decode.
func appendJournal(b []byte, j *engine.JournalEntry) []byte {
	e := enc{b: b}
	e.byte1(journalV2)
	e.str(j.RunID)
	if j.Change != nil && j.Device != "" && j.Device == engine.KeyOf(j.Change.Mailbox, j.Change.DeviceID) {
		e.byte1(deviceFromChange)
	} else {
		e.byte1(deviceLiteral)
		e.str(string(j.Device))
	}
	if j.Change == nil {
		e.byte1(0)
	} else {
		e.byte1(1)
		e.str(j.Change.Mailbox)
		e.str(j.Change.DeviceID)
		e.str(string(j.Change.List))
		e.str(string(j.Change.Op))
		e.str(j.Change.Reason)
		e.boolean(j.Change.Orphan)
	}
	e.time(j.Time)
	e.str(string(j.Kind))
	e.str(j.Stage)
	e.boolean(j.OK)
	e.str(j.Error)
	e.str(j.Actor)
	e.str(j.Message)
	e.boolean(j.Change != nil && j.Change.Grandfather)
	return e.b
}

func decodeJournal(s string, seq uint64, j *engine.JournalEntry) error {
	d := dec[string]{s: s}
	v := d.version("journal entry", journalV2)
	j.Seq = seq
	j.RunID = d.str()
	mode := d.byte1()
	switch mode {
	case deviceLiteral:
		j.Device = engine.DeviceKey(d.str())
	case deviceFromChange:
	default:
		d.fail(errors.New("bad device mode"))
	}
	switch d.byte1() {
	case 0:
		j.Change = nil
	case 1:
		j.Change = &engine.Change{
			Mailbox:  d.str(),
			DeviceID: d.str(),
			List:     engine.List(d.str()),
			Op:       engine.Op(d.str()),
			Reason:   d.str(),
			Orphan:   d.boolean(),
		}
	default:
		d.fail(errors.New("bad change marker"))
	}
	if mode == deviceFromChange {
		if j.Change == nil {
			d.fail(errors.New("device taken from a missing change"))
		} else {
			j.Device = engine.KeyOf(j.Change.Mailbox, j.Change.DeviceID)
		}
	}
	j.Time = d.time()
	j.Kind = engine.JournalKind(d.str())
	j.Stage = d.str()
	j.OK = d.boolean()
	j.Error = d.str()
	j.Actor = d.str()
	j.Message = d.str()
	if v >= journalV2 {
		if g := d.boolean(); j.Change != nil {
			j.Change.Grandfather = g
		}
	}
	return d.done()
}

// journalHead reads an encoded entry's run ID and device without copying
// (the slices alias b). The device is either dev, or the key of mailbox and
// deviceID (when dev is nil). ok is false when the value does not decode so
// far; the caller then decodes it fully to report the damage.
func journalHead(b []byte) (runID, dev, mailbox, deviceID []byte, ok bool) {
	d := dec[[]byte]{s: b}
	d.version("journal entry", journalV2)
	runID = d.raw()
	switch d.byte1() {
	case deviceLiteral:
		dev = d.raw()
		if dev == nil {
			dev = []byte{}
		}
	case deviceFromChange:
		if d.byte1() != 1 {
			d.fail(errors.New("device taken from a missing change"))
		}
		mailbox = d.raw()
		deviceID = d.raw()
	default:
		d.fail(errors.New("bad device mode"))
	}
	return runID, dev, mailbox, deviceID, d.err == nil
}

// matchesDevice reports whether a head from journalHead may concern the
// device key q (lower-cased). It errs on the side of yes; the caller checks
// the decoded entry exactly.
func matchesDevice(dev, mailbox, deviceID, q []byte) bool {
	if dev != nil {
		// An entry without a Device may still name the device in its change.
		return len(dev) == 0 || bytes.EqualFold(dev, q)
	}
	i := bytes.LastIndexByte(q, '/')
	return i >= 0 && bytes.EqualFold(mailbox, q[:i]) && bytes.EqualFold(deviceID, q[i+1:])
}
