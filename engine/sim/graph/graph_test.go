package graph

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine/sim/org"
	"easgate/engine/sim/simtls"
)

var testNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t      *testing.T
	org    *org.Org
	srv    *Server
	url    string
	client *http.Client

	mu  sync.Mutex
	now time.Time
}

func newFixture(t *testing.T, users int, opt Options) *fixture {
	t.Helper()
	ca, err := simtls.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, org: org.Generate(org.Options{Users: users, Seed: 7, Now: testNow}), now: testNow}
	if opt.Now == nil {
		opt.Now = f.clock
	}
	f.srv = New(f.org, opt)
	f.url, err = f.srv.Start("127.0.0.1:0", ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.srv.Close() })
	f.client = &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(), ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	t.Cleanup(f.client.CloseIdleConnections)
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fixture) tokenRequest(form url.Values) (*http.Response, map[string]any) {
	f.t.Helper()
	resp, err := f.client.PostForm(f.url+"/"+f.srv.TenantID()+"/oauth2/v2.0/token", form)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, decodeBody(f.t, resp)
}

func (f *fixture) token() string {
	f.t.Helper()
	resp, body := f.tokenRequest(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {f.srv.ClientID()},
		"client_secret": {f.srv.ClientSecret()}, "scope": {f.url + "/.default"},
	})
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("token: %d %v", resp.StatusCode, body)
	}
	return body["access_token"].(string)
}

func (f *fixture) get(rawURL, tok string) (*http.Response, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, decodeBody(f.t, resp)
}

func decodeBody(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("response is not JSON: %v: %q", err, raw)
		}
	}
	return m
}

func graphCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// allPages follows @odata.nextLink from first and returns every item.
func (f *fixture) allPages(first, tok string) (items []map[string]any, pages int) {
	f.t.Helper()
	next := first
	for next != "" {
		resp, body := f.get(next, tok)
		if resp.StatusCode != http.StatusOK {
			f.t.Fatalf("GET %s: %d %v", next, resp.StatusCode, body)
		}
		pages++
		for _, v := range body["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		next, _ = body["@odata.nextLink"].(string)
		if next != "" {
			u, err := url.Parse(next)
			if err != nil || u.Host != strings.TrimPrefix(f.url, "https://") || u.Query().Get("$skiptoken") == "" {
				f.t.Fatalf("nextLink %q: want this host and a $skiptoken", next)
			}
		}
		if pages > 10000 {
			f.t.Fatal("paging does not end")
		}
	}
	return items, pages
}

func TestOpenIDConfiguration(t *testing.T) {
	f := newFixture(t, 3, Options{})
	tests := []struct {
		name   string
		tenant string
		status int
	}{
		{name: "tenant id", tenant: f.srv.TenantID(), status: http.StatusOK},
		{name: "tenant domain", tenant: "contoso.com", status: http.StatusOK},
		{name: "unknown tenant", tenant: "fabrikam.com", status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(f.url+"/"+tt.tenant+"/v2.0/.well-known/openid-configuration", "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tt.status, body)
			}
			if tt.status != http.StatusOK {
				if body["error"] != "invalid_tenant" {
					t.Fatalf("error body %v", body)
				}
				return
			}
			want := f.url + "/" + f.srv.TenantID()
			if body["issuer"] != want+"/v2.0" || body["token_endpoint"] != want+"/oauth2/v2.0/token" {
				t.Fatalf("issuer %v token_endpoint %v", body["issuer"], body["token_endpoint"])
			}
			if body["authorization_endpoint"] == "" {
				t.Fatal("no authorization_endpoint: MSAL requires one")
			}
		})
	}
}

func TestTokenEndpoint(t *testing.T) {
	f := newFixture(t, 3, Options{TokenLifetime: 10 * time.Minute})
	good := func() url.Values {
		return url.Values{
			"grant_type": {"client_credentials"}, "client_id": {f.srv.ClientID()},
			"client_secret": {f.srv.ClientSecret()}, "scope": {f.url + "/.default openid profile offline_access"},
		}
	}
	tests := []struct {
		name   string
		change func(url.Values)
		status int
		err    string
	}{
		{name: "ok", change: func(url.Values) {}, status: http.StatusOK},
		{name: "wrong secret", change: func(v url.Values) { v.Set("client_secret", "not-the-secret") }, status: http.StatusUnauthorized, err: "invalid_client"},
		{name: "no secret", change: func(v url.Values) { v.Del("client_secret") }, status: http.StatusUnauthorized, err: "invalid_client"},
		{name: "unknown client", change: func(v url.Values) { v.Set("client_id", "11111111-2222-3333-4444-555555555555") }, status: http.StatusBadRequest, err: "unauthorized_client"},
		{name: "scope without .default", change: func(v url.Values) { v.Set("scope", f.url+"/DeviceManagementManagedDevices.Read.All") }, status: http.StatusBadRequest, err: "invalid_scope"},
		{name: "password grant", change: func(v url.Values) { v.Set("grant_type", "password") }, status: http.StatusBadRequest, err: "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := good()
			tt.change(form)
			resp, body := f.tokenRequest(form)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tt.status, body)
			}
			if tt.err != "" {
				if body["error"] != tt.err || !strings.HasPrefix(body["error_description"].(string), "AADSTS") {
					t.Fatalf("error body %v, want error %q", body, tt.err)
				}
				if strings.Contains(body["error_description"].(string), f.srv.ClientSecret()) {
					t.Fatal("error echoes the client secret")
				}
				return
			}
			if body["token_type"] != "Bearer" || body["expires_in"] != float64(600) || strings.Count(body["access_token"].(string), ".") != 2 {
				t.Fatalf("token response %v", body)
			}
		})
	}
}

func TestTokenEndpointAcceptsGzipBody(t *testing.T) {
	f := newFixture(t, 3, Options{})
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {f.srv.ClientID()},
		"client_secret": {f.srv.ClientSecret()}, "scope": {f.url + "/.default"},
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(form.Encode()))
	_ = zw.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/"+f.srv.TenantID()+"/oauth2/v2.0/token", &buf)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := decodeBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("gzip token request: %d %v", resp.StatusCode, body)
	}
}

func TestGraphRejectsBadTokens(t *testing.T) {
	f := newFixture(t, 3, Options{TokenLifetime: time.Hour})
	tok := f.token()
	expired := f.token()
	tests := []struct {
		name    string
		token   string
		advance time.Duration
		status  int
		message string
	}{
		{name: "valid", token: tok, status: http.StatusOK},
		{name: "missing", token: "", status: http.StatusUnauthorized, message: "Access token is empty."},
		{name: "unknown", token: "eyJ0eXAiOiJKV1QifQ.e30.c2ln", status: http.StatusUnauthorized, message: "Invalid signature"},
		{name: "expired", token: expired, advance: 2 * time.Hour, status: http.StatusUnauthorized, message: "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.advance(tt.advance)
			resp, body := f.get(f.url+PathManagedDevices+"?$top=1", tt.token)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusUnauthorized {
				msg := body["error"].(map[string]any)["message"].(string)
				if graphCode(body) != "InvalidAuthenticationToken" || !strings.Contains(msg, tt.message) {
					t.Fatalf("error body %v", body)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			}
		})
	}
	if st := f.srv.Stats(); st.Unauthorized != 3 || st.Graph != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGraphRejectsOtherAudience(t *testing.T) {
	f := newFixture(t, 3, Options{})
	resp, body := f.tokenRequest(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {f.srv.ClientID()},
		"client_secret": {f.srv.ClientSecret()}, "scope": {"https://outlook.office365.com/.default"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %v", body)
	}
	resp, body = f.get(f.url+PathManagedDevices, body["access_token"].(string))
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body["error"].(map[string]any)["message"].(string), "audience") {
		t.Fatalf("status %d body %v", resp.StatusCode, body)
	}
}

func TestManagedDevicesPagingReturnsEveryDeviceOnce(t *testing.T) {
	f := newFixture(t, 120, Options{})
	tok := f.token()
	items, pages := f.allPages(f.url+PathManagedDevices+"?$top=7", tok)
	f.org.Mu.RLock()
	want := len(f.org.Managed)
	f.org.Mu.RUnlock()
	if len(items) != want {
		t.Fatalf("got %d devices, want %d", len(items), want)
	}
	if wantPages := (want + 6) / 7; pages != wantPages {
		t.Fatalf("pages = %d, want %d", pages, wantPages)
	}
	seen := map[string]bool{}
	for _, d := range items {
		id := d["id"].(string)
		if seen[id] {
			t.Fatalf("device %s returned twice", id)
		}
		seen[id] = true
		for _, k := range []string{"complianceState", "managementAgent", "exchangeAccessState", "enrolledDateTime", "easDeviceId", "userPrincipalName"} {
			if _, ok := d[k]; !ok {
				t.Fatalf("device without $select lacks %s: %v", k, d)
			}
		}
		if _, err := time.Parse(time.RFC3339, d["lastSyncDateTime"].(string)); err != nil {
			t.Fatalf("lastSyncDateTime: %v", err)
		}
	}
	if st := f.srv.Stats(); st.ByPath[PathManagedDevices] != pages {
		t.Fatalf("stats %+v, want %d pages", st, pages)
	}
}

func TestManagedDevicesSelectAndTop(t *testing.T) {
	f := newFixture(t, 800, Options{})
	tok := f.token()
	tests := []struct {
		name     string
		query    string
		status   int
		items    int
		keys     []string
		context  string
		nextLink bool
	}{
		{name: "default page is 1000", query: "", status: http.StatusOK, items: 1000, nextLink: true},
		{name: "top above max clamps", query: "?$top=5000", status: http.StatusOK, items: 1000, nextLink: true},
		{name: "select", query: "?$top=2&$select=id,complianceState", status: http.StatusOK, items: 2, keys: []string{"complianceState", "id"},
			context: "/v1.0/$metadata#deviceManagement/managedDevices(id,complianceState)", nextLink: true},
		{name: "unknown property", query: "?$select=id,frobnicate", status: http.StatusBadRequest},
		{name: "bad top", query: "?$top=zero", status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(f.url+PathManagedDevices+tt.query, tok)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tt.status, body)
			}
			if tt.status != http.StatusOK {
				if graphCode(body) != "BadRequest" {
					t.Fatalf("error body %v", body)
				}
				return
			}
			v := body["value"].([]any)
			if len(v) != tt.items {
				t.Fatalf("%d items, want %d", len(v), tt.items)
			}
			if _, ok := body["@odata.nextLink"]; ok != tt.nextLink {
				t.Fatalf("nextLink present = %v", ok)
			}
			if tt.context != "" && body["@odata.context"] != f.url+tt.context {
				t.Fatalf("@odata.context %v", body["@odata.context"])
			}
			if tt.keys != nil {
				var got []string
				for k := range v[0].(map[string]any) {
					got = append(got, k)
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.keys) {
					t.Fatalf("keys %v, want %v", got, tt.keys)
				}
			}
		})
	}
}

func TestManagedDevicesFilter(t *testing.T) {
	f := newFixture(t, 150, Options{})
	tok := f.token()
	f.org.Mu.RLock()
	all := slices.Clone(f.org.Managed)
	f.org.Mu.RUnlock()
	since := testNow.Add(-2 * time.Hour)
	longAgo := testNow.AddDate(0, 0, -200)
	count := func(match func(d *org.ManagedDevice) bool) int {
		n := 0
		for _, d := range all {
			if match(d) {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name   string
		filter string
		want   int
	}{
		{name: "last sync gt", filter: "lastSyncDateTime gt " + since.Format(time.RFC3339),
			want: count(func(d *org.ManagedDevice) bool { return d.LastSyncDateTime.After(since) })},
		{name: "enrolled lt quoted", filter: "enrolledDateTime lt '" + longAgo.Format(time.RFC3339) + "'",
			want: count(func(d *org.ManagedDevice) bool { return d.EnrolledDateTime.Before(longAgo) })},
		{name: "compliance eq", filter: "complianceState eq 'noncompliant'",
			want: count(func(d *org.ManagedDevice) bool { return d.ComplianceState == "noncompliant" })},
		{name: "and of two", filter: "(operatingSystem eq 'Android') and (managementAgent eq 'mdm')",
			want: count(func(d *org.ManagedDevice) bool { return d.OperatingSystem == "Android" && d.ManagementAgent == "mdm" })},
		{name: "or is ignored", filter: "lastSyncDateTime gt " + since.Format(time.RFC3339) + " or enrolledDateTime gt " + since.Format(time.RFC3339), want: len(all)},
		{name: "unsupported property ignored", filter: "easDeviceId eq 'x'", want: len(all)},
		{name: "unsupported operator ignored", filter: "complianceState ne 'compliant'", want: len(all)},
		{name: "garbage ignored", filter: "'unterminated", want: len(all)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, _ := f.allPages(f.url+PathManagedDevices+"?$top=50&$filter="+url.QueryEscape(tt.filter), tok)
			if len(items) != tt.want {
				t.Fatalf("%d devices, want %d", len(items), tt.want)
			}
			if tt.want == 0 || tt.want == len(all) && !strings.Contains(tt.name, "ignored") {
				t.Fatalf("test filter selects %d of %d devices: not a useful case", tt.want, len(all))
			}
		})
	}
}

func TestManagedDevicesPassUnknownValuesAndEscapeStrings(t *testing.T) {
	f := newFixture(t, 2, Options{})
	tok := f.token()
	f.org.Mu.Lock()
	d := f.org.Managed[0]
	d.ComplianceState = "someFutureState"
	d.DeviceName = "Anna's \"phone\"\n\x01<script>\u2028 \xff"
	f.org.Mu.Unlock()
	resp, body := f.get(f.url+PathManagedDevices+"?$top=1&$select=id,deviceName,complianceState", tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	got := body["value"].([]any)[0].(map[string]any)
	if got["complianceState"] != "someFutureState" {
		t.Fatalf("complianceState %v", got["complianceState"])
	}
	if want := "Anna's \"phone\"\n\x01<script>\u2028 \ufffd"; got["deviceName"] != want {
		t.Fatalf("deviceName %q, want %q", got["deviceName"], want)
	}
}

func TestPagingSurvivesRemovalBetweenPages(t *testing.T) {
	f := newFixture(t, 40, Options{})
	tok := f.token()
	resp, body := f.get(f.url+PathManagedDevices+"?$top=10&$select=id", tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatal(body)
	}
	first := map[string]bool{}
	for _, v := range body["value"].([]any) {
		first[v.(map[string]any)["id"].(string)] = true
	}
	f.org.Mu.Lock()
	removed := f.org.Managed[2].ID // already returned
	f.org.RemoveManaged(removed)
	f.org.Mu.Unlock()
	rest, _ := f.allPages(body["@odata.nextLink"].(string), tok)
	f.org.Mu.RLock()
	defer f.org.Mu.RUnlock()
	if len(first)+len(rest)-1 != len(f.org.Managed) {
		t.Fatalf("%d + %d devices after removing one returned, org has %d", len(first), len(rest), len(f.org.Managed))
	}
	for _, d := range rest {
		if first[d["id"].(string)] {
			t.Fatalf("device %s returned twice", d["id"])
		}
	}
}

func TestGroupTransitiveUsers(t *testing.T) {
	f := newFixture(t, 230, Options{})
	tok := f.token()
	path := func(id string) string {
		return f.url + "/v1.0/groups/" + id + "/transitiveMembers/microsoft.graph.user"
	}
	tests := []struct {
		name   string
		url    string
		status int
		code   string
		users  int
	}{
		{name: "nested group", url: path(org.GroupMobileUsers) + "?$select=id,userPrincipalName,mail,proxyAddresses&$top=50", status: http.StatusOK, users: 230},
		{name: "default page size", url: path(org.GroupMobileUsers), status: http.StatusOK, users: 230},
		{name: "upper-case id", url: path(strings.ToUpper(org.GroupStaff)), status: http.StatusOK, users: len(f.org.GroupByID(org.GroupStaff).Members)},
		{name: "unknown group", url: path("0b6f0c52-0000-4d2a-9c51-0a1e2b3c4d99"), status: http.StatusNotFound, code: "Request_ResourceNotFound"},
		{name: "not a guid", url: path("staff"), status: http.StatusBadRequest, code: "Request_BadRequest"},
		{name: "top too large", url: path(org.GroupStaff) + "?$top=1000", status: http.StatusBadRequest, code: "Request_BadRequest"},
		{name: "unknown property", url: path(org.GroupStaff) + "?$select=id,shoeSize", status: http.StatusBadRequest, code: "Request_BadRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status != http.StatusOK {
				resp, body := f.get(tt.url, tok)
				if resp.StatusCode != tt.status || graphCode(body) != tt.code {
					t.Fatalf("status %d body %v, want %d %s", resp.StatusCode, body, tt.status, tt.code)
				}
				return
			}
			items, pages := f.allPages(tt.url, tok)
			if len(items) != tt.users {
				t.Fatalf("%d users, want %d", len(items), tt.users)
			}
			if pages < 2 {
				t.Fatalf("%d pages: want paging", pages)
			}
			if strings.Contains(tt.url, "proxyAddresses") {
				if _, ok := items[0]["proxyAddresses"].([]any); !ok {
					t.Fatalf("proxyAddresses not selected: %v", items[0])
				}
			} else if _, ok := items[0]["proxyAddresses"]; ok {
				t.Fatal("proxyAddresses returned without $select")
			}
		})
	}
}

func TestFaultsAndRetryAfter(t *testing.T) {
	f := newFixture(t, 60, Options{})
	tok := f.token()
	f.srv.AddFault(Fault{Path: PathManagedDevices, Page: 2, Status: http.StatusTooManyRequests, RetryAfter: "1.5", Times: 1})
	f.srv.AddFault(Fault{Path: PathManagedDevices, Page: 3, Status: http.StatusServiceUnavailable, RetryAfter: "2", Times: 2})

	resp, body := f.get(f.url+PathManagedDevices+"?$top=20", tok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("page 1: %d %v", resp.StatusCode, body)
	}
	page2 := body["@odata.nextLink"].(string)
	tests := []struct {
		name       string
		url        string
		status     int
		retryAfter string
		code       string
	}{
		{name: "page 2 throttled", url: page2, status: http.StatusTooManyRequests, retryAfter: "1.5", code: "TooManyRequests"},
		{name: "page 2 then served", url: page2, status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(tt.url, tok)
			if resp.StatusCode != tt.status || resp.Header.Get("Retry-After") != tt.retryAfter {
				t.Fatalf("status %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tt.status, tt.retryAfter)
			}
			if tt.code != "" && graphCode(body) != tt.code {
				t.Fatalf("error body %v", body)
			}
			if tt.status == http.StatusOK {
				page3 := body["@odata.nextLink"].(string)
				for range 2 {
					if r, _ := f.get(page3, tok); r.StatusCode != http.StatusServiceUnavailable {
						t.Fatalf("page 3: %d, want 503", r.StatusCode)
					}
				}
				if r, _ := f.get(page3, tok); r.StatusCode != http.StatusOK {
					t.Fatalf("page 3 after fault: %d", r.StatusCode)
				}
			}
		})
	}
	if st := f.srv.Stats(); st.Faults != 3 {
		t.Fatalf("faults = %d, want 3", st.Faults)
	}
}

func TestMissingRoleIsForbidden(t *testing.T) {
	f := newFixture(t, 3, Options{Roles: []string{RoleGroupMemberRead}})
	tok := f.token()
	resp, body := f.get(f.url+PathManagedDevices, tok)
	if resp.StatusCode != http.StatusForbidden || graphCode(body) != "Forbidden" {
		t.Fatalf("status %d body %v", resp.StatusCode, body)
	}
}

func TestUnknownSegment(t *testing.T) {
	f := newFixture(t, 3, Options{})
	resp, body := f.get(f.url+"/v1.0/me", f.token())
	if resp.StatusCode != http.StatusBadRequest || graphCode(body) != "BadRequest" {
		t.Fatalf("status %d body %v", resp.StatusCode, body)
	}
}
