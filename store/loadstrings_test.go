package store

import (
	"cmp"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"easgate/engine"
)

// loadTestState is the generated snapshot plus what it lacks: links,
// owned entries of several runs, notification errors, and strings longer
// than an arena chunk and than ownString.
func loadTestState(n int) *engine.Commit {
	c := newGen(42).snapshot(n, n, n*2/3)
	recs := c.PutRecords.Items
	for i := range recs {
		switch {
		case i%97 == 0:
			recs[i].Notify.LastError = "550 5.1.1 recipient rejected"
		case i%101 == 0:
			recs[i].Mailbox = strings.ToUpper(recs[i].Mailbox) // not the key's memory
		}
	}
	recs[1].Decision.Reason = strings.Repeat("a long reason; ", 10_000) // > stringChunk
	for i := 2; i < 40; i++ {
		recs[i].Identity = strings.Repeat(fmt.Sprintf("%c", 'A'+i), ownString-20+i) // around ownString
	}
	for i := range c.PutOwned.Items {
		c.PutOwned.Items[i].RunID = fmt.Sprintf("run-%04d", i%5)
	}
	for i := range 50 {
		r := &recs[i*7]
		c.PutLinks.Items = append(c.PutLinks.Items, engine.Link{Device: r.Key(), MDMID: r.MDMID,
			Kind: engine.LinkManual, Created: t0, By: "admin@contoso.com"})
	}
	return c
}

// loaded is a loaded state with the MDM records, which stay in the store
// until MDMDevices reads them.
type loaded struct {
	*engine.State
	MDM map[string]engine.MDMDevice
}

// mustLoadAll loads the state and reads the MDM records.
func mustLoadAll(t *testing.T, s *Store) loaded {
	t.Helper()
	mdm, err := s.MDMDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vals := make(map[string]engine.MDMDevice, len(mdm))
	for k, m := range mdm {
		vals[k] = *m
	}
	return loaded{mustLoad(t, s), vals}
}

// loadByCopy loads the five maps the way Load did before loadStrings: each
// pair copied out of the memory map as one string and decoded with the
// string decoders, every field a substring of the copy.
func loadByCopy(t *testing.T, s *Store) loaded {
	t.Helper()
	st := loaded{State: &engine.State{}}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if st.Records, err = byCopy[engine.DeviceKey](tx, bucketRecords, decodeRecord); err != nil {
			return err
		}
		if st.MDM, err = byCopy[string](tx, bucketMDM, decodeMDM); err != nil {
			return err
		}
		if st.Mailboxes, err = byCopy[string](tx, bucketMailboxes, decodeMailbox); err != nil {
			return err
		}
		if st.Links, err = byCopy[engine.DeviceKey](tx, bucketLinks, decodeLink); err != nil {
			return err
		}
		st.Owned, err = byCopy[engine.OwnedKey](tx, bucketOwned, decodeOwned)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func byCopy[K ~string, V any](tx *bolt.Tx, bucket []byte, decode func(string, *V) error) (map[K]V, error) {
	m := map[K]V{}
	err := tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		all := string(k) + string(v)
		var val V
		if err := decode(all[len(k):], &val); err != nil {
			return fmt.Errorf("%s %q: %w", bucket, k, err)
		}
		m[K(all[:len(k)])] = val
		return nil
	})
	return m, err
}

// sameMaps reports the first of the five loaded maps that differs.
func sameMaps(t *testing.T, got, want loaded) {
	t.Helper()
	for _, m := range []struct {
		name      string
		got, want any
	}{
		{"records", got.Records, want.Records},
		{"mdm", got.MDM, want.MDM},
		{"mailboxes", got.Mailboxes, want.Mailboxes},
		{"links", got.Links, want.Links},
		{"owned", got.Owned, want.Owned},
	} {
		if !reflect.DeepEqual(m.got, m.want) {
			t.Errorf("%s differ", m.name)
		}
	}
}

// eachString calls fn with every string reachable from v through exported
// fields, slices, pointers and map keys and values.
func eachString(v reflect.Value, fn func(string)) {
	switch v.Kind() {
	case reflect.String:
		fn(v.String())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				eachString(v.Field(i), fn)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			eachString(v.Index(i), fn)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			eachString(it.Key(), fn)
			eachString(it.Value(), fn)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			eachString(v.Elem(), fn)
		}
	}
}

// TestLoadEqualsStringDecoders loads a generated state (a tenth of full
// scale; full with EASGATE_STORE_SCALE=full) and checks that Load returns
// what copying each pair out and decoding it as a string returns, and what
// was committed.
func TestLoadEqualsStringDecoders(t *testing.T) {
	n := scaleRecords / 10
	if os.Getenv("EASGATE_STORE_SCALE") == "full" {
		n = scaleRecords
	}
	c := loadTestState(n)
	s := openTemp(t, Options{})
	mustCommit(t, s, c)
	st := mustLoadAll(t, s)
	sameMaps(t, st, loadByCopy(t, s))
	for _, r := range c.PutRecords.Items {
		if got := st.Records[r.Key()]; got != r {
			t.Fatalf("record %s loaded as %+v", r.Key(), got)
		}
	}
	if len(st.Links) != len(c.PutLinks.Items) || len(st.Owned) != len(c.PutOwned.Items) {
		t.Errorf("loaded %d links and %d owned entries, committed %d and %d",
			len(st.Links), len(st.Owned), len(c.PutLinks.Items), len(c.PutOwned.Items))
	}
}

// TestLoadedStringsDoNotAliasTheMap checks that no loaded string points into
// bbolt's memory map, which Load releases and Close unmaps: by address, and
// by reading every string after Close.
func TestLoadedStringsDoNotAliasTheMap(t *testing.T) {
	c := loadTestState(3000)
	s := openTemp(t, Options{})
	mustCommit(t, s, c)
	s = reopen(t, s, Options{ReadOnly: true})
	st := mustLoadAll(t, s)
	start := s.db.Info().Data
	end := start + uintptr(s.fileSize())
	strs := 0
	eachString(reflect.ValueOf(st), func(x string) {
		strs++
		if p := uintptr(unsafe.Pointer(unsafe.StringData(x))); x != "" && p >= start && p < end {
			t.Fatalf("string %.40q points into the memory map [%#x, %#x)", x, start, end)
		}
	})
	if strs < 3000*20 {
		t.Fatalf("walked %d strings: the walk missed the records", strs)
	}
	// After Close the map is gone: reading a string that aliased it
	// faults. (Reopening first could map the file at the same address.)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	maps := func(st loaded) string {
		return jsonOf(t, []any{st.Records, st.MDM, st.Mailboxes, st.Links, st.Owned})
	}
	closed := maps(st)
	s2, err := Open(s.Path(), Options{ReadOnly: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if closed != maps(mustLoadAll(t, s2)) {
		t.Error("the state loaded before Close reads differently after it")
	}
}

// TestLoadSharesRepeatedStrings checks where Load's strings live: repeated
// field values interned, fields equal to (a part of) the key in the key,
// back-references in the string they refer to.
func TestLoadSharesRepeatedStrings(t *testing.T) {
	c := loadTestState(2000)
	s := openTemp(t, Options{})
	mustCommit(t, s, c)
	st := mustLoadAll(t, s)
	data := func(s string) *byte { return unsafe.StringData(s) }
	firstOf := map[string]*byte{}
	shared := func(what, v string) {
		t.Helper()
		if p, ok := firstOf[what+"\x00"+v]; !ok {
			firstOf[what+"\x00"+v] = data(v)
		} else if p != data(v) {
			t.Fatalf("%s %q is not shared", what, v)
		}
	}
	for k, r := range st.Records {
		shared("device model", r.DeviceModel)
		shared("user agent", r.UserAgent)
		shared("access state", string(r.AccessState))
		shared("decision code", string(r.Decision.Code))
		if r.Notify.LastError != "" {
			shared("last error", r.Notify.LastError)
		}
		if r.Mailbox == r.PrimarySMTP && data(r.Mailbox) != data(r.PrimarySMTP) {
			t.Fatalf("record %s: PrimarySMTP, a back-reference to Mailbox, is a copy", k)
		}
		if mb, _ := k.Split(); mb == r.Mailbox && data(r.Mailbox) != data(string(k)) {
			t.Fatalf("record %s: Mailbox is not the key's memory", k)
		}
	}
	for k, m := range st.MDM {
		shared("model", m.Model)
		shared("manufacturer", m.Manufacturer)
		if data(k) != data(m.ID) {
			t.Fatalf("MDM record %s: ID is not the key's memory", k)
		}
	}
	for k, m := range st.Mailboxes {
		if data(k) != data(m.UPN) || data(m.Addresses[0]) != data(m.UPN) {
			t.Fatalf("mailbox %s: UPN and its first address are not the key's memory", k)
		}
	}
	for k, o := range st.Owned {
		shared("run id", o.RunID)
		shared("list", string(o.List))
		if data(string(k)) != data(o.Mailbox) {
			t.Fatalf("owned entry %s: Mailbox is not the key's memory", k)
		}
	}
	for k, l := range st.Links {
		if data(string(k)) != data(string(l.Device)) {
			t.Fatalf("link %s: Device is not the key's memory", k)
		}
	}
}

// TestLoadStringsArena copies strings of many lengths through chunk ends,
// strings longer than a chunk, and a source buffer overwritten after each
// copy: every string must keep its text, and none may overlap another.
func TestLoadStringsArena(t *testing.T) {
	ls := newLoadStrings()
	src := make([]byte, 3*stringChunk)
	type made struct {
		s    string
		want string
	}
	var all []made
	add := func(n int) string {
		for i := range n {
			src[i] = byte('a' + (len(all)+i)%26)
		}
		want := string(src[:n])
		s := ls.copy(src[:n])
		clear(src[:n]) // a string that aliased src would change
		all = append(all, made{s, want})
		return s
	}
	// Lengths that fill chunks unevenly, so strings end at and next to
	// chunk ends.
	for i := range 2000 {
		add(1 + (i*i*37)%(ownString-1))
	}
	// A chunk filled exactly: the next string starts a new one.
	ls.chunk = nil
	for range stringChunk / (ownString / 2) {
		add(ownString / 2)
	}
	if cap(ls.chunk) != len(ls.chunk) {
		t.Fatalf("chunk has %d of %d bytes used, want it full", len(ls.chunk), cap(ls.chunk))
	}
	add(1)
	// A string longer than a chunk, and one of exactly ownString, get their
	// own allocations: the chunk goes on after them.
	before := add(10)
	add(2*stringChunk + 3)
	add(ownString)
	after := add(10)
	if unsafe.StringData(after) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(before)), len(before))) {
		t.Error("a long string cut the chunk short")
	}
	if got := ls.copy(nil); got != "" {
		t.Errorf("empty copy %q", got)
	}

	type span struct{ lo, hi uintptr }
	spans := make([]span, 0, len(all))
	for i, m := range all {
		if m.s != m.want {
			t.Fatalf("string %d (%d bytes) changed", i, len(m.want))
		}
		p := uintptr(unsafe.Pointer(unsafe.StringData(m.s)))
		spans = append(spans, span{p, p + uintptr(len(m.s))})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			t.Fatalf("strings overlap: [%#x, %#x) and [%#x, %#x)", spans[i-1].lo, spans[i-1].hi, spans[i].lo, spans[i].hi)
		}
	}
}

// TestLoadStringsInternerCap checks that a repeated field with more values
// than maxSyms still decodes, as copies.
func TestLoadStringsInternerCap(t *testing.T) {
	ls := newLoadStrings()
	for i := range maxSyms + 10 {
		v := fmt.Sprintf("error %d", i)
		if got := ls.sym([]byte(v)); got != v {
			t.Fatalf("sym %q = %q", v, got)
		}
	}
	if len(ls.syms) != maxSyms {
		t.Errorf("interner holds %d strings, want the cap %d", len(ls.syms), maxSyms)
	}
	a, b := ls.sym([]byte("error 1")), ls.sym([]byte("error 1"))
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("an interned value is copied again")
	}
}

// TestLoadBackReferences decodes a value whose strings refer back to
// earlier ones, through Load's decoder: each resolves to the string it
// refers to, wherever that lives.
func TestLoadBackReferences(t *testing.T) {
	m := engine.Mailbox{UPN: "Anna.Berg@contoso.com", PrimarySMTP: "Anna.Berg@contoso.com",
		Addresses: []string{"anna@contoso.com", "Anna.Berg@contoso.com"}, Allowed: []string{"anna@contoso.com"}}
	b := appendMailbox(nil, &m)
	got, err := decodeMap[string](bucketMailboxes, pairs{chunks: [][]kv{{{k: []byte("anna.berg@contoso.com"), v: b}}}, n: 1}, readMailbox)
	if err != nil {
		t.Fatal(err)
	}
	g := got["anna.berg@contoso.com"]
	if !reflect.DeepEqual(g, m) {
		t.Fatalf("decoded %+v, want %+v", g, m)
	}
	d := func(s string) *byte { return unsafe.StringData(s) }
	if d(g.PrimarySMTP) != d(g.UPN) || d(g.Addresses[1]) != d(g.UPN) || d(g.Allowed[0]) != d(g.Addresses[0]) {
		t.Error("a back-reference is a copy of the string it refers to")
	}
}
