package exchange

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"testing"
	"unsafe"
)

// fastCorpus is lines the scripts write, in both PowerShell's quirky
// forms and easgate's own, and lines fastRecord must hand to
// encoding/json.
func fastCorpus(t testing.TB) [][]byte {
	data, err := os.ReadFile("testdata/inventory-ps51.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(data, []byte("\n"))
	for _, l := range []string{
		`{"t":"device","Identity":"contoso.com/Users/Anna/ExchangeActiveSyncDevices/iPhone\u00a7ApplF17","DeviceId":"ApplF17","FirstSyncTime":"2025-03-14T09:26:53Z","WhenChangedUTC":null,"DeviceAccessState":1,"ClientType":"EAS","mailbox_dn":"CN=Anna\\, S,OU=Users,DC=contoso,DC=com"}`,
		`{"t":"mailbox","DistinguishedName":"CN=A","EmailAddresses":["SMTP:a@b","smtp:c@d"],"ActiveSyncAllowedDeviceIDs":"One","ActiveSyncBlockedDeviceIDs":null,"UserPrincipalName":"a@b"}`,
		`{"t":"mailbox","ActiveSyncAllowedDeviceIDs":[],"ActiveSyncBlockedDeviceIDs":[1,true,null]}`,
		`{"t":"stat","Identity":"x","LastSuccessSync":"\/Date(1700000000000)\/"}`,
		`{"t":"result","id":"e1","ok":"True","count":"3"}`,
		`{"t":"result","id":"e2","ok":0,"count":null,"error":"Couldn't find \"x\"\ttab"}`,
		`{"T":"end","Devices":12,"MAILBOXES":3,"unknown":[1,2],"other":-1.5e3}`,
		`{"t":"end","devices":1e309}`,
		`{"t":"result","fields":{"a":"b"}}`,
		`{"t":"mailbox","EmailAddresses":{"value":["smtp:a@b"],"Count":1}}`,
		`{"t":"device","FirstSyncTime":12}`,
		`{"t":1}`,
		`{"t":"x","message":"\ud83d\ude00"}`,
		`{"t":"x","message":"é"}`,
		`{"t":"x","ſcript":"a"}`,
		`{"t":"x",}`,
		`{"t":"x"} trailing`,
		`{}`,
		` { "t" : "begin" , "script" : "inventory/2" } `,
		`{"t":"x","ok":"maybe"}`,
		`{"t":"x","count":01}`,
	} {
		lines = append(lines, []byte(l))
	}
	return lines
}

// TestFastRecordAgreesWithEncodingJSON checks that every line fastRecord
// takes decodes as encoding/json decodes it, and that it declines what it
// cannot read.
func TestFastRecordAgreesWithEncodingJSON(t *testing.T) {
	took := 0
	for _, line := range fastCorpus(t) {
		checkFastRecord(t, line)
		var r record
		var scratch []byte
		if fastRecord(line, &r, &scratch, nil) {
			took++
		}
	}
	if took < 10 {
		t.Errorf("fastRecord took %d lines of the corpus, want most of them", took)
	}
}

func checkFastRecord(t testing.TB, line []byte) {
	var fast record
	var scratch []byte
	in := interner{}
	if !fastRecord(line, &fast, &scratch, in) {
		return
	}
	var slow record
	if err := json.Unmarshal(line, &slow); err != nil {
		t.Errorf("fastRecord took %q, which encoding/json rejects: %v", line, err)
		return
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Errorf("line %q:\nfast %+v\njson %+v", line, fast, slow)
	}
	// Again with the strings the first pass interned: the same record.
	var again record
	if !fastRecord(line, &again, &scratch, in) || !reflect.DeepEqual(again, slow) {
		t.Errorf("line %q read again with interned strings:\nfast %+v\njson %+v", line, again, slow)
	}
}

// FuzzFastRecord checks fastRecord against encoding/json on arbitrary lines.
func FuzzFastRecord(f *testing.F) {
	for _, line := range fastCorpus(f) {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkFastRecord(t, line) })
}

func BenchmarkParseLine(b *testing.B) {
	line := []byte(`{"t":"device","mailbox_dn":"CN=Anna Schmidt,OU=Users,DC=contoso,DC=com","Identity":"contoso.com/Users/Anna Schmidt/ExchangeActiveSyncDevices/iPhone\u00a7ApplF17XK2L9Q4MN","DeviceId":"ApplF17XK2L9Q4MN","DeviceType":"iPhone","DeviceModel":"iPhone15C2","DeviceOS":"iOS 17.5.1 21F90","DeviceUserAgent":"Apple-iPhone15C2/2105.90","ClientType":"EAS","DeviceAccessState":"Allowed","DeviceAccessStateReason":"Global","FirstSyncTime":"2025-03-14T09:26:53Z","WhenChangedUTC":"2026-10-31T06:17:06Z"}`)
	for _, tt := range []struct {
		name string
		fn   func(*record) error
	}{
		{name: "fast", fn: func(r *record) error {
			var s []byte
			if !fastRecord(line, r, &s, interner{}) {
				b.Fatal("declined")
			}
			return nil
		}},
		{name: "encoding-json", fn: func(r *record) error { *r = record{}; return json.Unmarshal(line, r) }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			var r record
			for b.Loop() {
				if err := tt.fn(&r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestRepeatedValuesShareOneString(t *testing.T) {
	in := interner{}
	var scratch []byte
	read := func(id string) record {
		var r record
		line := []byte(`{"t":"device","DeviceId":"` + id + `","DeviceModel":"iPhone15C2","DeviceUserAgent":"Apple-iPhone15C2/2105.90"}`)
		if !fastRecord(line, &r, &scratch, in) {
			t.Fatalf("declined %s", line)
		}
		return r
	}
	a, b := read("ApplA"), read("ApplB")
	if unsafe.StringData(string(a.DeviceModel)) != unsafe.StringData(string(b.DeviceModel)) ||
		unsafe.StringData(a.T) != unsafe.StringData(b.T) {
		t.Error("two partnerships of one model hold two copies of its name")
	}
	if unsafe.StringData(string(a.DeviceID)) == unsafe.StringData(string(b.DeviceID)) {
		t.Error("device IDs were interned")
	}
	for i := range 2 * maxInterned {
		in.of([]byte(strconv.Itoa(i)))
	}
	if len(in) > maxInterned {
		t.Errorf("interner holds %d strings, want at most %d", len(in), maxInterned)
	}
}
