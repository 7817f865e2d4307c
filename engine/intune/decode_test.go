package intune

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"easgate/engine"
)

func TestDecodePageSkipsBadRecords(t *testing.T) {
	f, err := os.Open("testdata/page_mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p devicePage
	if err := p.decode(f, 3); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if want := "https://graph.microsoft.com/v1.0/deviceManagement/managedDevices?$top=7&$skiptoken=abc"; p.next != want {
		t.Errorf("next = %q, want %q", p.next, want)
	}
	tests := []struct {
		name string
		id   string
		want engine.MDMDevice
	}{
		{name: "full record", id: "11111111-0000-4000-8000-000000000001", want: engine.MDMDevice{
			ID: "11111111-0000-4000-8000-000000000001", UserPrincipalName: "anna@contoso.com", Email: "anna@contoso.com",
			DeviceName: "Anna's iPhone", OperatingSystem: "iOS", OSVersion: "18.1", Model: "iPhone 15", Manufacturer: "Apple",
			EASDeviceID: "ApplABCDEF123456", EASActivated: true, Compliance: engine.ComplianceCompliant, ManagementAgent: "mdm",
			ExchangeAccessState: "none", Enrolled: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			LastSync: time.Date(2026, 10, 31, 8, 0, 0, 123456700, time.UTC),
		}},
		{name: "unknown enums pass through, zero dates", id: "11111111-0000-4000-8000-000000000002", want: engine.MDMDevice{
			ID: "11111111-0000-4000-8000-000000000002", Compliance: "someFutureState", ManagementAgent: "quantumAgent",
			ExchangeAccessState: "probation",
		}},
		{name: "control characters kept as data, unknown property ignored", id: "11111111-0000-4000-8000-000000000007", want: engine.MDMDevice{
			ID: "11111111-0000-4000-8000-000000000007", DeviceName: "ctl \x01 and <script>", Compliance: engine.ComplianceNoncompliant,
		}},
	}
	byID := map[string]engine.MDMDevice{}
	for _, d := range p.devices {
		byID[d.ID] = d
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := byID[tt.id]
			if !ok {
				t.Fatalf("device %s missing", tt.id)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if len(p.devices) != 3 {
		t.Errorf("%d devices kept, want 3", len(p.devices))
	}
	wantProblems := []string{"000000000003", "no id", "device 5 on page 3", "device 6 on page 3"}
	if len(p.problems) != len(wantProblems) {
		t.Fatalf("problems %q, want %d", p.problems, len(wantProblems))
	}
	for i, w := range wantProblems {
		if !strings.Contains(p.problems[i], w) {
			t.Errorf("problem %d = %q, want it to mention %q", i, p.problems[i], w)
		}
	}
}

func TestDecodePageRejectsMalformedBodies(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "not json", body: "<html>gateway error</html>"},
		{name: "truncated", body: `{"value":[{"id":"a"},`},
		{name: "value not an array", body: `{"value":{"id":"a"}}`},
		{name: "no value", body: `{"@odata.context":"x"}`},
		{name: "array at top", body: `[{"id":"a"}]`},
		{name: "nextLink not a string", body: `{"@odata.nextLink":5,"value":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p devicePage
			err := p.decode(strings.NewReader(tt.body), 1)
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{TenantID: "t", ClientID: "c", ClientSecret: "s", GraphURL: "https://graph.microsoft.com", AuthorityURL: "https://login.microsoftonline.com/"}
	tests := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{name: "good", change: func(*Config) {}, ok: true},
		{name: "sovereign cloud", change: func(c *Config) {
			c.GraphURL, c.AuthorityURL = "https://graph.microsoft.us", "https://login.microsoftonline.us"
		}, ok: true},
		{name: "no tenant", change: func(c *Config) { c.TenantID = " " }},
		{name: "no client", change: func(c *Config) { c.ClientID = "" }},
		{name: "no secret", change: func(c *Config) { c.ClientSecret = "" }},
		{name: "certificate only", change: func(c *Config) { c.ClientSecret, c.CertificateFile = "", "/etc/easgate/app.pem" }},
		{name: "http graph", change: func(c *Config) { c.GraphURL = "http://graph.microsoft.com" }},
		{name: "graph with version", change: func(c *Config) { c.GraphURL = "https://graph.microsoft.com/v1.0" }},
		{name: "authority with tenant", change: func(c *Config) { c.AuthorityURL = "https://login.microsoftonline.com/contoso.com" }},
		{name: "empty authority", change: func(c *Config) { c.AuthorityURL = "" }},
		{name: "ca not pem", change: func(c *Config) { c.CAPEM = []byte("not a certificate") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			c, err := New(cfg, nil)
			if tt.ok {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				c.Close()
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if strings.Contains(err.Error(), "s\"") {
				t.Fatalf("error may quote the secret: %v", err)
			}
		})
	}
}

func TestRolesOf(t *testing.T) {
	tests := []struct {
		name  string
		token string
		roles []string
		ok    bool
	}{
		{name: "jwt with roles", token: "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJhIiwiYiJdfQ.c2ln", roles: []string{"a", "b"}, ok: true},
		{name: "jwt without roles", token: "eyJhbGciOiJub25lIn0.e30.c2ln", ok: true},
		{name: "opaque", token: "EwBwA8l6BAAU", ok: false},
		{name: "bad base64", token: "a.!!!.c", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roles, ok := rolesOf(tt.token)
			if ok != tt.ok || strings.Join(roles, ",") != strings.Join(tt.roles, ",") {
				t.Fatalf("rolesOf = %v, %v; want %v, %v", roles, ok, tt.roles, tt.ok)
			}
		})
	}
}

func TestDeviceReadKeepsTheLaterCopyOfAMovedDevice(t *testing.T) {
	dev := func(id, name string) engine.MDMDevice { return engine.MDMDevice{ID: id, DeviceName: name} }
	tests := []struct {
		name  string
		pages [][]engine.MDMDevice
		want  []engine.MDMDevice
	}{
		{name: "no duplicates", pages: [][]engine.MDMDevice{{dev("a", "1"), dev("b", "1")}, {dev("c", "2")}},
			want: []engine.MDMDevice{dev("a", "1"), dev("b", "1"), dev("c", "2")}},
		{name: "moved to a later page", pages: [][]engine.MDMDevice{{dev("a", "1"), dev("b", "1")}, {dev("c", "2"), dev("a", "2")}},
			want: []engine.MDMDevice{dev("a", "2"), dev("b", "1"), dev("c", "2")}},
		{name: "twice on one page", pages: [][]engine.MDMDevice{{dev("a", "1"), dev("a", "1b"), dev("b", "1")}},
			want: []engine.MDMDevice{dev("a", "1b"), dev("b", "1")}},
		{name: "a page of duplicates only", pages: [][]engine.MDMDevice{{dev("a", "1")}, {dev("a", "2")}, {dev("b", "3")}},
			want: []engine.MDMDevice{dev("a", "2"), dev("b", "3")}},
		{name: "nothing", pages: nil, want: []engine.MDMDevice{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &deviceRead{}
			for _, p := range tt.pages {
				r.add(slices.Clone(p))
			}
			got := r.finish().devices
			if !slices.Equal(got, tt.want) || cap(got) != len(got) {
				t.Fatalf("got %v (cap %d), want %v", got, cap(got), tt.want)
			}
		})
	}
}

func TestInternerSharesFewValuedStrings(t *testing.T) {
	in := newInterner()
	a := in.of(string([]byte("iOS")))
	b := in.of(string([]byte("iOS")))
	if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("equal strings are not shared")
	}
	for i := range maxInterned + 10 {
		in.of(strconv.Itoa(i))
	}
	if len(in.m) != maxInterned {
		t.Fatalf("interner holds %d strings, want at most %d", len(in.m), maxInterned)
	}
	var none *interner
	if none.of("x") != "x" {
		t.Fatal("nil interner changed its argument")
	}
}
