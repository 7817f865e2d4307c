package intune

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodePage feeds arbitrary bodies to the managed devices page decoder
// (seed corpus in testdata/fuzz/FuzzDecodePage): it must never panic; a
// body it cannot read is an ErrBadResponse; a record it cannot map is a
// one-line problem, never a device without an ID or a compliance state;
// and decoding is deterministic.
func FuzzDecodePage(f *testing.F) {
	b, err := os.ReadFile("testdata/page_mixed.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"value":[]}`))
	f.Add([]byte(`{"@odata.nextLink":"https://graph.microsoft.com/v1.0/deviceManagement/managedDevices?$skiptoken=x","value":[{"id":"a"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		decode := func() (devicePage, error) {
			p := devicePage{intern: newInterner()}
			err := p.decode(bytes.NewReader(body), 2)
			return p, err
		}
		p, err := decode()
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("decode error %v is not an ErrBadResponse", err)
			}
			return
		}
		for _, d := range p.devices {
			if d.ID == "" || d.Compliance == "" {
				t.Errorf("device %+v: no ID or no compliance state", d)
			}
			if !d.Enrolled.IsZero() && d.Enrolled.Location().String() != "UTC" {
				t.Errorf("device %s: enrolled %v is not UTC", d.ID, d.Enrolled)
			}
		}
		for _, pr := range p.problems {
			if strings.ContainsAny(pr, "\r\n") {
				t.Errorf("problem %q spans lines", pr)
			}
		}
		again, err := decode()
		if err != nil || !reflect.DeepEqual(again.devices, p.devices) || !reflect.DeepEqual(again.problems, p.problems) || again.next != p.next {
			t.Errorf("decoding twice gave different pages (%v)", err)
		}
	})
}
