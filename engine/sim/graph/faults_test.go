package graph

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSlowAndExpiringFaults(t *testing.T) {
	tests := []struct {
		name     string
		fault    Fault
		status   int
		code     string
		minTaken time.Duration
	}{
		{name: "slow page served", fault: Fault{Page: 1, Delay: 150 * time.Millisecond, Times: 1}, status: http.StatusOK, minTaken: 150 * time.Millisecond},
		{name: "slow then throttled", fault: Fault{Page: 1, Delay: 100 * time.Millisecond, Status: http.StatusTooManyRequests, RetryAfter: "0.5", Times: 1},
			status: http.StatusTooManyRequests, code: "TooManyRequests", minTaken: 100 * time.Millisecond},
		{name: "token expires at this page", fault: Fault{Page: 1, ExpireTokens: true, Times: 1}, status: http.StatusUnauthorized, code: "InvalidAuthenticationToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 20, Options{})
			tok := f.token()
			tt.fault.Path = PathManagedDevices
			f.srv.AddFault(tt.fault)
			start := time.Now()
			resp, body := f.get(f.url+PathManagedDevices+"?$top=5", tok)
			if took := time.Since(start); took < tt.minTaken {
				t.Fatalf("answered in %v, want at least %v", took, tt.minTaken)
			}
			if resp.StatusCode != tt.status || (tt.code != "" && graphCode(body) != tt.code) {
				t.Fatalf("status %d %v, want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			// The fault fired once: the next request (with a fresh token)
			// is served at once.
			start = time.Now()
			if resp, body := f.get(f.url+PathManagedDevices+"?$top=5", f.token()); resp.StatusCode != http.StatusOK {
				t.Fatalf("after the fault: %d %v", resp.StatusCode, body)
			}
			if took := time.Since(start); took > 100*time.Millisecond && tt.fault.Delay > 0 {
				t.Fatalf("second request took %v: the slow fault did not clear", took)
			}
			if tt.fault.ExpireTokens {
				if r, _ := f.get(f.url+PathManagedDevices, tok); r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("the old token still works: %d", r.StatusCode)
				}
			}
		})
	}
}

func TestTruncatedPage(t *testing.T) {
	f := newFixture(t, 40, Options{})
	tok := f.token()
	f.srv.AddFault(Fault{Path: PathManagedDevices, Status: StatusTruncated, Times: 1})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.url+PathManagedDevices+"?$top=30", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Fatalf("status %d, read %d bytes, err %v: want 200 and a body that breaks off", resp.StatusCode, len(body), err)
	}
	if len(body) == 0 || !strings.HasPrefix(string(body), `{"@odata.context"`) {
		t.Fatalf("body %q: want the start of the page", body)
	}
}

func TestTokenEndpointFaults(t *testing.T) {
	f := newFixture(t, 3, Options{})
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.srv.ClientID()},
		"client_secret": {f.srv.ClientSecret()}, "scope": {f.url + "/.default"}}
	f.srv.AddFault(Fault{Path: f.srv.TokenPath(), Status: http.StatusServiceUnavailable, RetryAfter: "1", Times: 1})
	f.srv.AddFault(Fault{Path: f.srv.TokenPath(), Delay: 120 * time.Millisecond, Times: 1})
	resp, body := f.tokenRequest(form)
	if resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("first token request: %d %v", resp.StatusCode, body)
	}
	start := time.Now()
	resp, body = f.tokenRequest(form)
	if resp.StatusCode != http.StatusOK || time.Since(start) < 120*time.Millisecond {
		t.Fatalf("second token request: %d %v after %v, want a slow 200", resp.StatusCode, body, time.Since(start))
	}
	if st := f.srv.Stats(); st.TokenFailures != 1 || st.Tokens != 1 || st.Faults != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPageCounters(t *testing.T) {
	f := newFixture(t, 50, Options{})
	tok := f.token()
	items, pages := f.allPages(f.url+PathManagedDevices+"?$top=13", tok)
	members, memberPages := f.allPages(f.url+"/v1.0/groups/6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d01/transitiveMembers/microsoft.graph.user?$top=9", tok)
	st := f.srv.Stats()
	if st.Pages != pages+memberPages || st.Objects != len(items)+len(members) || st.Requests < st.Pages {
		t.Fatalf("stats %+v: want %d pages, %d objects", st, pages+memberPages, len(items)+len(members))
	}
}

func TestCostModel(t *testing.T) {
	tests := []struct {
		name  string
		scale float64
		query string
		min   time.Duration
		max   time.Duration
	}{
		{name: "off", query: "?$top=100&$select=id", max: 250 * time.Millisecond},
		{name: "narrow select", scale: 0.1, query: "?$top=100&$select=id,easDeviceId",
			min: (CostDevicePage + 100*CostPerDevice) / 10},
		{name: "no select costs more", scale: 0.1, query: "?$top=100",
			min: (CostDevicePage + 100*CostPerDeviceWide) / 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 80, Options{CostScale: tt.scale})
			start := time.Now()
			tok := f.token()
			if took := time.Since(start); tt.scale > 0 && took < time.Duration(float64(CostToken)*tt.scale) {
				t.Fatalf("token in %v, want at least its cost", took)
			}
			start = time.Now()
			resp, body := f.get(f.url+PathManagedDevices+tt.query, tok)
			took := time.Since(start)
			if resp.StatusCode != http.StatusOK || len(body["value"].([]any)) != 100 {
				t.Fatalf("page: %d", resp.StatusCode)
			}
			if took < tt.min || (tt.max > 0 && took > tt.max) {
				t.Fatalf("page of 100 in %v, want within [%v, %v]", took, tt.min, tt.max)
			}
		})
	}
}

func TestAlteredLinksAreCounted(t *testing.T) {
	f := newFixture(t, 40, Options{})
	tok := f.token()
	_, body := f.get(f.url+PathManagedDevices+"?$top=10&$select=id,easDeviceId", tok)
	next := body["@odata.nextLink"].(string)
	tests := []struct {
		name string
		url  string
		want int
	}{
		{name: "verbatim", url: next, want: 0},
		{name: "query reordered", url: reorder(t, next), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.srv.ResetStats()
			if resp, body := f.get(tt.url, tok); resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %v", resp.StatusCode, body)
			}
			if got := f.srv.Stats().AlteredLinks; got != tt.want {
				t.Fatalf("altered links %d, want %d", got, tt.want)
			}
		})
	}
}

// reorder rebuilds a link's query in another order, as a client that
// parsed and re-encoded it would.
func reorder(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = u.Query().Encode()
	return u.String()
}
