package intune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim/graph"
	"easgate/engine/sim/org"
	"easgate/engine/sim/simtls"
)

var simNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// lockedBuffer collects log output from concurrent goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	t      testing.TB
	org    *org.Org
	sim    *graph.Server
	url    string
	ca     *simtls.CA
	cfg    Config
	client *Client
	logs   *lockedBuffer
	calls  *callRecorder
}

type envOptions struct {
	users  int
	org    *org.Org // instead of generating one with users
	sim    graph.Options
	cert   *simtls.ClientCertificate // authenticate with this certificate instead of the secret
	config func(*Config)
}

// newEnv starts the Graph simulator over a generated org on 127.0.0.1 and
// a real client (azidentity + msgraph-sdk-go) pointed at it. Backoff
// without Retry-After starts at 20 ms to keep tests fast.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ca, err := simtls.New()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, org: o.org, logs: &lockedBuffer{}, calls: &callRecorder{}}
	if e.org == nil {
		e.org = org.Generate(org.Options{Users: o.users, Seed: 42, Now: simNow})
	}
	if o.cert != nil {
		o.sim.ClientCertificates = append(o.sim.ClientCertificates, o.cert.Cert)
	}
	e.sim = graph.New(e.org, o.sim)
	e.url, err = e.sim.Start("127.0.0.1:0", ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.sim.Close() })
	e.cfg = Config{
		TenantID:       e.sim.TenantID(),
		ClientID:       e.sim.ClientID(),
		ClientSecret:   e.sim.ClientSecret(),
		GraphURL:       e.url,
		AuthorityURL:   e.url,
		CAPEM:          ca.CertPEM(),
		Observer:       e.calls,
		RetryBaseDelay: 20 * time.Millisecond,
	}
	if o.cert != nil {
		e.cfg.ClientSecret = ""
		e.cfg.CertificateFile = filepath.Join(t.TempDir(), "app.pem")
		if err := o.cert.WriteFile(e.cfg.CertificateFile); err != nil {
			t.Fatal(err)
		}
	}
	if o.config != nil {
		o.config(&e.cfg)
	}
	e.client = e.newClient(e.cfg)
	return e
}

func (e *env) newClient(cfg Config) *Client {
	e.t.Helper()
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg, log)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

func (e *env) managed() []*org.ManagedDevice {
	e.org.Mu.RLock()
	defer e.org.Mu.RUnlock()
	return slices.Clone(e.org.Managed)
}

// wantMDM is what the adapter must report for an org device.
func wantMDM(d *org.ManagedDevice) engine.MDMDevice {
	c := engine.Compliance(d.ComplianceState)
	if c == "" {
		c = engine.ComplianceUnknown
	}
	x := d.ExchangeAccessState
	if x == "" {
		x = "none"
	}
	return engine.MDMDevice{
		ID: d.ID, UserID: d.UserID, UserPrincipalName: d.UserPrincipalName, Email: d.EmailAddress,
		DeviceName: d.DeviceName, OperatingSystem: d.OperatingSystem, OSVersion: d.OSVersion, Model: d.Model,
		Manufacturer: d.Manufacturer, EASDeviceID: d.EASDeviceID, EASActivated: d.EASActivated, Compliance: c,
		ManagementAgent: d.ManagementAgent, ExchangeAccessState: x, Enrolled: d.EnrolledDateTime.UTC(),
		LastSync: d.LastSyncDateTime.UTC(),
	}
}

// checkSame compares an inventory with the org devices it must hold.
func checkSame(t *testing.T, got []engine.MDMDevice, want []*org.ManagedDevice) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d devices, want %d", len(got), len(want))
	}
	byID := map[string]engine.MDMDevice{}
	for _, d := range got {
		if _, dup := byID[d.ID]; dup {
			t.Fatalf("device %s twice", d.ID)
		}
		byID[d.ID] = d
	}
	for _, d := range want {
		g, ok := byID[d.ID]
		if !ok {
			t.Fatalf("device %s missing", d.ID)
		}
		if w := wantMDM(d); g != w {
			t.Fatalf("device %s:\ngot  %+v\nwant %+v", d.ID, g, w)
		}
	}
}

// checkClean asserts that every Graph request carried a valid token and no
// secret or token reached the log.
func (e *env) checkClean() {
	e.t.Helper()
	if st := e.sim.Stats(); st.Unauthorized != 0 || st.AlteredLinks != 0 {
		e.t.Errorf("simulator refused %d requests for their token; %d requests did not follow a nextLink verbatim", st.Unauthorized, st.AlteredLinks)
	}
	logs := e.logs.String()
	if strings.Contains(logs, e.sim.ClientSecret()) || strings.Contains(logs, "eyJ") || strings.Contains(logs, "PRIVATE KEY") {
		e.t.Errorf("log holds a secret or a token:\n%s", logs)
	}
}

func TestInventoryEqualsOrg(t *testing.T) {
	e := newEnv(t, envOptions{users: 300})
	inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Complete() || inv.Quick {
		t.Fatalf("inventory complete=%v quick=%v problems=%q", inv.Complete(), inv.Quick, inv.Problems)
	}
	checkSame(t, inv.Devices, e.managed())
	st := e.sim.Stats()
	if st.Tokens != 1 || st.Discovery != 1 || st.Graph != 1 {
		t.Fatalf("stats %+v: want one discovery, one token, one page", st)
	}
	e.checkClean()
}

func TestPagingOverSeveralPages(t *testing.T) {
	e := newEnv(t, envOptions{users: 300, config: func(c *Config) { c.PageSize = 37 }})
	inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := e.managed()
	checkSame(t, inv.Devices, want)
	pages := (len(want) + 36) / 37
	if st := e.sim.Stats(); st.ByPath[graph.PathManagedDevices] != pages || e.client.Requests() != int64(pages) {
		t.Fatalf("served %d pages, client sent %d requests, want %d", st.ByPath[graph.PathManagedDevices], e.client.Requests(), pages)
	}
	// A second read reuses the cached token.
	if _, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{}); err != nil {
		t.Fatal(err)
	}
	if st := e.sim.Stats(); st.Tokens != 1 {
		t.Fatalf("%d tokens issued, want 1 (cached)", st.Tokens)
	}
	e.checkClean()
}

func TestQuickFilter(t *testing.T) {
	since := simNow.Add(-3 * time.Hour).Add(123 * time.Millisecond)
	tests := []struct {
		name   string
		ignore bool
	}{
		{name: "graph honours the filter"},
		{name: "graph ignores the filter", ignore: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			simLog := &lockedBuffer{}
			e := newEnv(t, envOptions{users: 200, config: func(c *Config) { c.PageSize = 50 }, sim: graph.Options{IgnoreFilters: tt.ignore,
				Log: slog.New(slog.NewJSONHandler(simLog, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
			e.org.Mu.Lock()
			// Move every device's dates out of the window, then put a few
			// back: synced since, enrolled since, both.
			for _, d := range e.org.Managed {
				d.LastSyncDateTime = since.Add(-time.Hour)
				d.EnrolledDateTime = since.Add(-48 * time.Hour)
			}
			e.org.Managed[3].LastSyncDateTime = since.Add(time.Minute)
			e.org.Managed[7].EnrolledDateTime = since.Add(time.Minute)
			e.org.Managed[7].LastSyncDateTime = since.Add(-time.Minute)
			e.org.Managed[9].LastSyncDateTime = since.Add(2 * time.Minute)
			e.org.Managed[9].EnrolledDateTime = since.Add(time.Minute)
			want := []*org.ManagedDevice{e.org.Managed[3], e.org.Managed[7], e.org.Managed[9]}
			e.org.Mu.Unlock()

			inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{Since: since})
			if err != nil {
				t.Fatal(err)
			}
			if !inv.Quick || !inv.Since.Equal(since) || !inv.Complete() {
				t.Fatalf("inventory quick=%v since=%v problems=%q", inv.Quick, inv.Since, inv.Problems)
			}
			checkSame(t, inv.Devices, want)
			if tt.ignore && !strings.Contains(e.logs.String(), "graph returned devices outside its filter") {
				t.Error("ignored filter not logged")
			}
			// Two filtered reads, from Since rounded down to the second.
			filters := map[string]int{}
			for _, q := range loggedQueries(t, simLog) {
				filters[q.Get("$filter")]++
			}
			stamp := since.Truncate(time.Second).Format(time.RFC3339)
			for _, want := range []string{"lastSyncDateTime gt " + stamp, "enrolledDateTime gt " + stamp} {
				if filters[want] == 0 {
					t.Errorf("no request with $filter=%s; filters sent: %v", want, filters)
				}
			}
			if filters[""] != 0 {
				t.Errorf("%d unfiltered requests in a quick read", filters[""])
			}
			e.checkClean()
		})
	}
}

func TestUnknownEnumValuesPassThrough(t *testing.T) {
	e := newEnv(t, envOptions{users: 20})
	e.org.Mu.Lock()
	d := e.org.Managed[0]
	d.ComplianceState = "someFutureState"
	d.ManagementAgent = "googleCloudDevicePolicyController"
	d.ExchangeAccessState = "someFutureAccess"
	e.org.Mu.Unlock()
	inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, inv.Devices, e.managed())
	for _, got := range inv.Devices {
		if got.ID == d.ID && (got.Compliance != "someFutureState" || got.ManagementAgent != d.ManagementAgent || got.ExchangeAccessState != "someFutureAccess") {
			t.Fatalf("unknown values lost: %+v", got)
		}
	}
	if !inv.Complete() {
		t.Fatalf("unknown enum made a problem: %q", inv.Problems)
	}
}

func TestGroupMembers(t *testing.T) {
	e := newEnv(t, envOptions{users: 260, config: func(c *Config) { c.PageSize = 40 }})
	e.org.Mu.RLock()
	all := slices.Clone(e.org.Users)
	execs := slices.Clone(e.org.GroupByID(org.GroupExecutives).Members)
	e.org.Mu.RUnlock()
	tests := []struct {
		name  string
		group string
		want  []string // user IDs
	}{
		{name: "nested groups reach every user", group: org.GroupMobileUsers, want: idsOf(all)},
		{name: "direct members", group: org.GroupExecutives, want: execs},
		{name: "upper-case id", group: strings.ToUpper(org.GroupExecutives), want: execs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := e.client.GroupMembers(t.Context(), tt.group)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.ID)
				ou := e.org.UserByID(u.ID)
				if ou == nil || u.UserPrincipalName != ou.UPN || u.Mail != ou.PrimarySMTP || !slices.Equal(u.ProxyAddresses, ou.ProxyAddresses) {
					t.Fatalf("user %+v does not match the org's", u)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Fatalf("%d members, want %d", len(got), len(want))
			}
		})
	}
	e.checkClean()
}

func idsOf(users []*org.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

func TestUnknownGroupIsNotFound(t *testing.T) {
	e := newEnv(t, envOptions{users: 5})
	tests := []struct {
		name  string
		group string
	}{
		{name: "no such group", group: "0b6f0c52-0000-4d2a-9c51-0a1e2b3c4d99"},
		{name: "not an object id", group: "Mobile users"},
		{name: "path injection", group: "../users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.GroupMembers(t.Context(), tt.group)
			if !errors.Is(err, engine.ErrGroupNotFound) {
				t.Fatalf("err = %v, want ErrGroupNotFound", err)
			}
		})
	}
}

func TestNoRequestWithoutToken(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *env)
		pages int // pages the simulator serves before the guard stops the read
	}{
		{
			// The simulator's certificate also covers localhost, so only the
			// adapter's guard stops page 2 going out without a token.
			name:  "nextLink to another host",
			setup: func(e *env) { e.sim.SetLinkBase(strings.Replace(e.url, "127.0.0.1", "localhost", 1)) },
			pages: 1,
		},
		{
			name: "graph host outside the allowed hosts",
			setup: func(e *env) {
				e.client.auth.GetAuthorizationTokenProvider().GetAllowedHostsValidator().SetAllowedHosts([]string{"graph.microsoft.com"})
			},
			pages: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: 60, config: func(c *Config) { c.PageSize = 20 }})
			tt.setup(e)
			_, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
			if !errors.Is(err, ErrNoToken) {
				t.Fatalf("err = %v, want ErrNoToken", err)
			}
			t.Logf("error: %v", err)
			st := e.sim.Stats()
			if st.Graph != tt.pages || st.Unauthorized != 0 {
				t.Fatalf("simulator served %d pages and refused %d requests; want %d and 0: nothing may leave without a token",
					st.Graph, st.Unauthorized, tt.pages)
			}
		})
	}
}

func TestAuthenticationFailures(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config, e *env)
		want   []string
	}{
		{name: "wrong secret", change: func(c *Config, _ *env) { c.ClientSecret = "wrong-secret-value" }, want: []string{"401", "invalid_client", "AADSTS7000215"}},
		{name: "unknown application", change: func(c *Config, _ *env) { c.ClientID = "11111111-2222-4333-8444-555555555555" }, want: []string{"400", "unauthorized_client", "AADSTS700016"}},
		{name: "unknown tenant", change: func(c *Config, _ *env) { c.TenantID = "fabrikam.com" }, want: []string{"invalid_tenant", "AADSTS90002"}},
		{name: "authority not trusted", change: func(c *Config, _ *env) { c.CAPEM = nil }, want: []string{"certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: 5})
			cfg := e.cfg
			tt.change(&cfg, e)
			c := e.newClient(cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			_, err := c.ManagedDevices(ctx, engine.MDMQuery{})
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("err = %v, want ErrAuthentication", err)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if strings.Contains(msg, cfg.ClientSecret) || strings.Contains(msg, "\n") {
				t.Errorf("error %q holds the secret or spans lines", msg)
			}
			if st := e.sim.Stats(); st.Graph != 0 || st.Unauthorized != 0 {
				t.Errorf("Graph reached without a token: %+v", st)
			}
			rep, err := c.Test(ctx)
			if err == nil || rep.TokenOK || rep.ReadOK || rep.Error == "" {
				t.Errorf("Test = %+v, %v: want a failed token", rep, err)
			}
		})
	}
}

func TestConcurrentReads(t *testing.T) {
	e := newEnv(t, envOptions{users: 150, config: func(c *Config) { c.PageSize = 25 }})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
				errs <- err
				return
			}
			_, err := e.client.GroupMembers(t.Context(), org.GroupMobileUsers)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := e.sim.Stats(); st.Tokens != 1 {
		t.Fatalf("%d tokens for concurrent reads, want 1", st.Tokens)
	}
	e.checkClean()
}

func TestWireShapeOfDeviceReads(t *testing.T) {
	simLog := &lockedBuffer{}
	e := newEnv(t, envOptions{users: 120, sim: graph.Options{Log: slog.New(slog.NewJSONHandler(simLog, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	cfg := e.cfg
	cfg.PageSize = 0 // the default: Graph's largest page
	if _, err := e.newClient(cfg).ManagedDevices(t.Context(), engine.MDMQuery{}); err != nil {
		t.Fatal(err)
	}
	cfg.PageSize = 40 // several pages
	c := e.newClient(cfg)
	if _, err := c.ManagedDevices(t.Context(), engine.MDMQuery{}); err != nil {
		t.Fatal(err)
	}
	queries := loggedQueries(t, simLog)
	if len(queries) < 3 {
		t.Fatalf("%d device requests logged", len(queries))
	}
	wantSelect := "id,userId,userPrincipalName,emailAddress,deviceName,operatingSystem,osVersion,model,manufacturer," +
		"easDeviceId,easActivated,complianceState,managementAgent,exchangeAccessState,enrolledDateTime,lastSyncDateTime"
	tests := []struct {
		name string
		q    url.Values
		top  string
	}{
		{name: "default page size", q: queries[0], top: "1000"},
		{name: "first page", q: queries[1], top: "40"},
		{name: "a later page", q: queries[2], top: "40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.q.Get("$select") != wantSelect || tt.q.Get("$top") != tt.top {
				t.Fatalf("query %v: want $select=%s and $top=%s", tt.q, wantSelect, tt.top)
			}
		})
	}
	if queries[2].Get("$skiptoken") == "" {
		t.Fatal("the second page was not requested through its nextLink")
	}
	if st := e.sim.Stats(); st.AlteredLinks != 0 || st.Pages < 3 {
		t.Fatalf("%d of %d page requests did not use the nextLink verbatim", st.AlteredLinks, st.Pages)
	}
}

// loggedQueries returns the queries of the managedDevices requests the
// simulator logged, in order.
func loggedQueries(t *testing.T, simLog *lockedBuffer) []url.Values {
	t.Helper()
	var queries []url.Values
	for _, line := range strings.Split(strings.TrimSpace(simLog.String()), "\n") {
		var rec struct{ Path, Query string }
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Path != graph.PathManagedDevices {
			continue
		}
		q, err := url.ParseQuery(rec.Query)
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, q)
	}
	return queries
}

func TestAuthorityAndGraphOnDifferentHosts(t *testing.T) {
	// As in a sovereign cloud: the authority and Graph are other hosts than
	// the public cloud's, and not each other. The token's scope comes from
	// graph_url: the simulator accepts a token only for the Graph host the
	// request reaches.
	e := newEnv(t, envOptions{users: 30})
	cfg := e.cfg
	cfg.AuthorityURL = strings.Replace(e.url, "127.0.0.1", "localhost", 1)
	c := e.newClient(cfg)
	inv, err := c.ManagedDevices(t.Context(), engine.MDMQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, inv.Devices, e.managed())
	if c.scope != e.url+"/.default" {
		t.Fatalf("scope %q, want graph_url's", c.scope)
	}
	if st := e.sim.Stats(); st.Tokens != 1 || st.Unauthorized != 0 {
		t.Fatalf("stats %+v", st)
	}
	e.checkClean()
}
