package intune

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	"github.com/microsoftgraph/msgraph-sdk-go/devicemanagement"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"easgate/engine"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
)

// This file measures the two ways to turn a managedDevices page into
// engine.MDMDevice values (the SDK's models, or encoding/json over the
// body the SDK's adapter fetched) and shows what the models lose.
//
//	go test -run '^$' -bench . -benchtime 3x ./engine/intune

// sdkToMDM maps an SDK model; an enum value the SDK does not know arrives
// here as nil and is lost.
func sdkToMDM(d models.ManagedDeviceable) engine.MDMDevice {
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	t := func(p *time.Time) time.Time {
		if p == nil {
			return time.Time{}
		}
		return p.UTC()
	}
	m := engine.MDMDevice{
		ID: s(d.GetId()), UserID: s(d.GetUserId()), UserPrincipalName: s(d.GetUserPrincipalName()),
		Email: s(d.GetEmailAddress()), DeviceName: s(d.GetDeviceName()), OperatingSystem: s(d.GetOperatingSystem()),
		OSVersion: s(d.GetOsVersion()), Model: s(d.GetModel()), Manufacturer: s(d.GetManufacturer()),
		EASDeviceID: s(d.GetEasDeviceId()), Enrolled: t(d.GetEnrolledDateTime()), LastSync: t(d.GetLastSyncDateTime()),
	}
	if b := d.GetEasActivated(); b != nil {
		m.EASActivated = *b
	}
	if c := d.GetComplianceState(); c != nil {
		m.Compliance = engine.Compliance(c.String())
	}
	if a := d.GetManagementAgent(); a != nil {
		m.ManagementAgent = a.String()
	}
	if x := d.GetExchangeAccessState(); x != nil {
		m.ExchangeAccessState = x.String()
	}
	return m
}

func sdkDecode(body []byte) ([]engine.MDMDevice, string, error) {
	node, err := jsonserialization.NewJsonParseNode(body)
	if err != nil {
		return nil, "", err
	}
	v, err := node.GetObjectValue(models.CreateManagedDeviceCollectionResponseFromDiscriminatorValue)
	if err != nil {
		return nil, "", err
	}
	col := v.(models.ManagedDeviceCollectionResponseable)
	out := make([]engine.MDMDevice, 0, len(col.GetValue()))
	for _, d := range col.GetValue() {
		out = append(out, sdkToMDM(d))
	}
	next := ""
	if p := col.GetOdataNextLink(); p != nil {
		next = *p
	}
	return out, next, nil
}

// sdkInventory reads every managed device through the SDK's models.
func sdkInventory(ctx context.Context, c *Client) ([]engine.MDMDevice, int, error) {
	top := int32(c.cfg.PageSize)
	builder := c.graph.DeviceManagement().ManagedDevices()
	resp, err := builder.Get(ctx, &devicemanagement.ManagedDevicesRequestBuilderGetRequestConfiguration{
		QueryParameters: &devicemanagement.ManagedDevicesRequestBuilderGetQueryParameters{Select: deviceSelect, Top: &top},
	})
	var out []engine.MDMDevice
	pages := 0
	for {
		if err != nil {
			return nil, pages, err
		}
		pages++
		for _, d := range resp.GetValue() {
			out = append(out, sdkToMDM(d))
		}
		next := resp.GetOdataNextLink()
		if next == nil {
			return out, pages, nil
		}
		resp, err = builder.WithUrl(*next).Get(ctx, nil)
	}
}

// simPage serves one page of n devices from the simulator's handler,
// without a network, as the adapter requests it.
func simPage(tb testing.TB, n int) []byte {
	tb.Helper()
	o := org.Generate(org.Options{Users: n, Seed: 9, Now: simNow})
	sim := graph.New(o, graph.Options{})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sim.ClientID()},
		"client_secret": {sim.ClientSecret()}, "scope": {"https://graph.microsoft.com/.default"}}
	req := httptest.NewRequest(http.MethodPost, "https://sim/"+sim.TenantID()+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	tok := rec.Body.String()
	tok = tok[strings.Index(tok, `"access_token":"`)+len(`"access_token":"`):]
	tok = tok[:strings.IndexByte(tok, '"')]
	req = httptest.NewRequest(http.MethodGet, fmt.Sprintf("https://sim%s?$top=%d&$select=%s", graph.PathManagedDevices, n, strings.Join(deviceSelect, ",")), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec = httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("page: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

func TestSDKModelsDropUnknownEnum(t *testing.T) {
	body := []byte(`{"value":[{"id":"a","complianceState":"someFutureState","managementAgent":"futureAgent","exchangeAccessState":"allowed"}]}`)
	sdk, _, err := sdkDecode(body)
	if err != nil {
		t.Fatal(err)
	}
	var p devicePage
	if err := p.decode(strings.NewReader(string(body)), 1); err != nil {
		t.Fatal(err)
	}
	if sdk[0].Compliance != "" || sdk[0].ManagementAgent != "" || sdk[0].ExchangeAccessState != "allowed" {
		t.Fatalf("the SDK's models now keep unknown enums (%+v): revisit the decoding decision", sdk[0])
	}
	if got := p.devices[0]; got.Compliance != "someFutureState" || got.ManagementAgent != "futureAgent" {
		t.Fatalf("own decoding lost an unknown enum: %+v", got)
	}
}

func TestBothDecodersAgreeOnKnownValues(t *testing.T) {
	body := simPage(t, 200)
	sdk, _, err := sdkDecode(body)
	if err != nil {
		t.Fatal(err)
	}
	var p devicePage
	if err := p.decode(strings.NewReader(string(body)), 1); err != nil {
		t.Fatal(err)
	}
	if len(sdk) != len(p.devices) || len(sdk) == 0 {
		t.Fatalf("sdk %d devices, own %d", len(sdk), len(p.devices))
	}
	for i := range sdk {
		if sdk[i] != p.devices[i] {
			t.Fatalf("device %d:\nsdk %+v\nown %+v", i, sdk[i], p.devices[i])
		}
	}
}

// perHundredK reports time and bytes allocated per 100,000 devices.
func perHundredK(b *testing.B, devices int, elapsed time.Duration, allocated uint64) {
	n := float64(devices) / 100_000
	b.ReportMetric(elapsed.Seconds()*1000/n, "ms/100k-devices")
	b.ReportMetric(float64(allocated)/(1<<20)/n, "MiB-alloc/100k-devices")
}

func BenchmarkDecodePage(b *testing.B) {
	body := simPage(b, 1000)
	b.SetBytes(int64(len(body)))
	for _, bm := range []struct {
		name   string
		decode func() (int, error)
	}{
		{name: "encoding-json", decode: func() (int, error) {
			var p devicePage
			err := p.decode(bytes.NewReader(body), 1)
			return len(p.devices), err
		}},
		{name: "sdk-models", decode: func() (int, error) {
			d, _, err := sdkDecode(body)
			return len(d), err
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			start := time.Now()
			devices := 0
			for b.Loop() {
				n, err := bm.decode()
				if err != nil {
					b.Fatal(err)
				}
				devices += n
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&ms1)
			perHundredK(b, devices, elapsed, ms1.TotalAlloc-ms0.TotalAlloc)
		})
	}
}

// BenchmarkInventory100k reads 100,000 managed devices in pages of 1000
// from the simulator over 127.0.0.1 HTTPS with the real SDK and azidentity.
// The simulator runs in the same process, so "raw-http" (the same pages
// read and discarded by net/http) is the baseline to subtract.
func BenchmarkInventory100k(b *testing.B) {
	if testing.Short() {
		b.Skip("large inventory")
	}
	const devices = 100_000
	big := org.Generate(org.Options{Users: 68_000, Seed: 3, Now: simNow})
	if len(big.Managed) < devices {
		b.Fatalf("generated %d managed devices, want %d", len(big.Managed), devices)
	}
	big.Managed = big.Managed[:devices]
	e := newEnv(b, envOptions{org: big})

	ctx := context.Background()
	raw := func() (int, int, error) {
		tok, err := e.client.tokens.GetToken(ctx, e.client.tokenOpts)
		if err != nil {
			return 0, 0, err
		}
		hc := &http.Client{Transport: e.client.base}
		next := fmt.Sprintf("%s%s?$top=1000&$select=%s", e.url, graph.PathManagedDevices, strings.Join(deviceSelect, ","))
		pages := 0
		for next != "" {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			resp, err := hc.Do(req)
			if err != nil {
				return 0, pages, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return 0, pages, err
			}
			pages++
			next = ""
			if i := strings.Index(string(body), `"@odata.nextLink":"`); i >= 0 {
				rest := string(body[i+len(`"@odata.nextLink":"`):])
				next = rest[:strings.IndexByte(rest, '"')]
			}
		}
		return devices, pages, nil
	}
	for _, bm := range []struct {
		name string
		read func() (int, int, error)
	}{
		{name: "raw-http", read: raw},
		{name: "encoding-json", read: func() (int, int, error) {
			inv, err := e.client.ManagedDevices(ctx, engine.MDMQuery{})
			if err != nil {
				return 0, 0, err
			}
			return len(inv.Devices), (len(inv.Devices) + 999) / 1000, nil
		}},
		{name: "sdk-models", read: func() (int, int, error) {
			d, pages, err := sdkInventory(ctx, e.client)
			return len(d), pages, err
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			start := time.Now()
			total, pages := 0, 0
			for b.Loop() {
				n, p, err := bm.read()
				if err != nil {
					b.Fatal(err)
				}
				if n != devices {
					b.Fatalf("%d devices, want %d", n, devices)
				}
				total += n
				pages += p
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&ms1)
			perHundredK(b, total, elapsed, ms1.TotalAlloc-ms0.TotalAlloc)
			b.ReportMetric(float64(pages)/elapsed.Seconds(), "pages/s")
		})
	}
}
