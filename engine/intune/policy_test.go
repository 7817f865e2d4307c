package intune

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim/graph"
)

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		want   time.Duration
		ok     bool
	}{
		{name: "whole seconds", header: "2", want: 2 * time.Second, ok: true},
		{name: "fractional seconds", header: "0.6", want: 600 * time.Millisecond, ok: true},
		{name: "fraction above one", header: "1.25", want: 1250 * time.Millisecond, ok: true},
		{name: "spaces", header: " 3 ", want: 3 * time.Second, ok: true},
		{name: "zero", header: "0", want: 0, ok: true},
		{name: "negative means now", header: "-5", want: 0, ok: true},
		{name: "http date ahead", header: "Sun, 01 Nov 2026 12:00:07 GMT", want: 7 * time.Second, ok: true},
		{name: "http date past", header: "Sun, 01 Nov 2026 11:59:00 GMT", want: 0, ok: true},
		{name: "rfc 850 date", header: "Sunday, 01-Nov-26 12:00:04 GMT", want: 4 * time.Second, ok: true},
		{name: "absurdly long", header: "1e12", want: 24 * time.Hour, ok: true},
		{name: "empty", header: "", ok: false},
		{name: "not a number", header: "soon", ok: false},
		{name: "NaN", header: "NaN", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := retryAfter(tt.header, now)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("retryAfter(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBackoffDoublesWithJitterAndCap(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		min, max time.Duration
	}{
		{name: "first retry", n: 0, min: 50 * time.Millisecond, max: 100 * time.Millisecond},
		{name: "second retry", n: 1, min: 100 * time.Millisecond, max: 200 * time.Millisecond},
		{name: "fourth retry", n: 3, min: 400 * time.Millisecond, max: 800 * time.Millisecond},
		{name: "capped", n: 30, min: time.Second / 2, max: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := backoff(100*time.Millisecond, time.Second, tt.n)
				if d < tt.min || d > tt.max {
					t.Fatalf("backoff = %v, want within [%v, %v]", d, tt.min, tt.max)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Fatalf("only %d distinct waits in 200: no jitter", len(seen))
			}
		})
	}
}

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func TestLimiterSlidingWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		hold time.Duration // hold before the first reservation
		want []time.Duration
	}{
		// Three per second: the fourth waits for the first to leave the
		// window, the seventh for the fourth.
		{name: "three per second", want: []time.Duration{0, 0, 0, time.Second, time.Second, time.Second, 2 * time.Second}},
		{name: "held by a 429", hold: 1500 * time.Millisecond,
			want: []time.Duration{1500 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			l := newLimiter(3, time.Second)
			l.now = clk.now
			if tt.hold > 0 {
				l.hold(t0.Add(tt.hold))
				l.hold(t0) // an earlier hold does not shorten it
			}
			for i, want := range tt.want {
				if got := l.reserve().Sub(t0); got != want {
					t.Fatalf("reservation %d at +%v, want +%v", i+1, got, want)
				}
			}
		})
	}
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	l := newLimiter(1, time.Hour)
	if err := l.wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := l.wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("wait ignored the context")
	}
}

func TestRateLimitSpacesRequests(t *testing.T) {
	t.Parallel()
	// 5 requests per 300 ms; 12 pages need three windows: at least 600 ms.
	e := newEnv(t, envOptions{users: 40})
	cfg := e.cfg
	cfg.PageSize = max(1, len(e.managed())/12)
	cfg.RateLimit, cfg.RateWindow = 5, 300*time.Millisecond
	c := e.newClient(cfg)
	start := time.Now()
	inv, err := c.ManagedDevices(t.Context(), engine.MDMQuery{})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, inv.Devices, e.managed())
	pages := e.sim.Stats().ByPath[graph.PathManagedDevices]
	if pages < 12 {
		t.Fatalf("%d pages, want at least 12 for the test to mean something", pages)
	}
	if least := time.Duration((pages-1)/5) * 300 * time.Millisecond; elapsed < least {
		t.Fatalf("%d pages in %v: the limiter let more than 5 per 300 ms through (want at least %v)", pages, elapsed, least)
	}
}

func TestThrottledPagesAreRetriedAfterTheStatedDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		faults  []graph.Fault
		config  func(*Config)
		minWait time.Duration
		maxWait time.Duration
		retries int
	}{
		{
			name:    "429 with fractional Retry-After",
			faults:  []graph.Fault{{Page: 2, Status: http.StatusTooManyRequests, RetryAfter: "0.6", Times: 1}},
			minWait: 600 * time.Millisecond, maxWait: 2 * time.Second, retries: 1,
		},
		{
			name: "503 then 504, fractional and whole",
			faults: []graph.Fault{
				{Page: 2, Status: http.StatusServiceUnavailable, RetryAfter: "0.25", Times: 1},
				{Page: 3, Status: http.StatusGatewayTimeout, RetryAfter: "1", Times: 1},
			},
			minWait: 1250 * time.Millisecond, maxWait: 3 * time.Second, retries: 2,
		},
		{
			name:    "Retry-After as an HTTP date",
			faults:  []graph.Fault{{Page: 2, Status: http.StatusTooManyRequests, RetryAfter: "date+2s", Times: 1}},
			minWait: 900 * time.Millisecond, maxWait: 3 * time.Second, retries: 1, // the date has one-second resolution
		},
		{
			name:    "Retry-After beyond the cap waits the cap",
			faults:  []graph.Fault{{Page: 2, Status: http.StatusTooManyRequests, RetryAfter: "30", Times: 1}},
			config:  func(c *Config) { c.MaxRetryWait = 300 * time.Millisecond },
			minWait: 300 * time.Millisecond, maxWait: 2 * time.Second, retries: 1,
		},
		{
			name:    "no Retry-After backs off",
			faults:  []graph.Fault{{Page: 2, Status: http.StatusServiceUnavailable, Times: 2}},
			config:  func(c *Config) { c.RetryBaseDelay = 100 * time.Millisecond },
			minWait: 150 * time.Millisecond, maxWait: 2 * time.Second, retries: 2, // 50..100 ms, then 100..200 ms
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{users: 100, config: func(c *Config) {
				c.PageSize = 30
				if tt.config != nil {
					tt.config(c)
				}
			}})
			for _, f := range tt.faults {
				f.Path = graph.PathManagedDevices
				if f.RetryAfter == "date+2s" {
					f.RetryAfter = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
				}
				e.sim.AddFault(f)
			}
			start := time.Now()
			inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if !inv.Complete() {
				t.Fatalf("problems: %q", inv.Problems)
			}
			want := e.managed()
			checkSame(t, inv.Devices, want)
			pages := (len(want) + 29) / 30
			if got := e.client.Requests(); got != int64(pages+tt.retries) {
				t.Fatalf("%d requests for %d pages, want %d retries", got, pages, tt.retries)
			}
			if elapsed < tt.minWait || elapsed > tt.maxWait {
				t.Fatalf("read took %v, want between %v and %v", elapsed, tt.minWait, tt.maxWait)
			}
			all, failed := e.calls.count(OpManagedDevices)
			if all != pages+tt.retries || failed != tt.retries {
				t.Fatalf("observer saw %d calls (%d failed), want %d (%d failed)", all, failed, pages+tt.retries, tt.retries)
			}
			e.checkClean()
		})
	}
}

func TestThrottlingHoldsOtherRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{users: 60, config: func(c *Config) { c.PageSize = 20 }})
	// A request that starts while another waits out a 429's Retry-After
	// must wait too: Graph throttles the app, not the request.
	e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 1, Status: http.StatusTooManyRequests, RetryAfter: "0.8", Times: 1})
	var wg sync.WaitGroup
	var groupTook time.Duration
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	}()
	go func() {
		defer wg.Done()
		time.Sleep(200 * time.Millisecond) // after the 429
		start := time.Now()
		if _, err := e.client.GroupMembers(t.Context(), "6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d03"); err != nil {
			t.Error(err)
		}
		groupTook = time.Since(start)
	}()
	wg.Wait()
	if groupTook < 400*time.Millisecond {
		t.Fatalf("a group read during the 429's Retry-After took %v: it was not held", groupTook)
	}
}

func TestRetriesGiveUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		config   func(*Config)
		fault    graph.Fault
		want     error
		attempts int
	}{
		{name: "after MaxRetries", config: func(c *Config) { c.MaxRetries = 3 },
			fault: graph.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0"}, want: ErrThrottled, attempts: 4},
		{name: "when the budget would be exceeded", config: func(c *Config) { c.RetryBudget = 500 * time.Millisecond },
			fault: graph.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "0.3"}, want: ErrUnavailable, attempts: 2},
		{name: "never with retries off", config: func(c *Config) { c.MaxRetries = -1 },
			fault: graph.Fault{Status: http.StatusGatewayTimeout, RetryAfter: "0"}, want: ErrUnavailable, attempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: 10, config: tt.config})
			tt.fault.Path = graph.PathManagedDevices
			e.sim.AddFault(tt.fault)
			_, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			t.Logf("error: %v", err)
			if got := e.sim.Stats().Faults; got != tt.attempts {
				t.Fatalf("%d attempts, want %d", got, tt.attempts)
			}
		})
	}
}

func TestRetryWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{users: 10})
	e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, Status: http.StatusTooManyRequests, RetryAfter: "30"})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.client.ManagedDevices(ctx, engine.MDMQuery{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cancelled read took %v", took)
	}
}

func TestExpiredTokenIsRenewedMidInventory(t *testing.T) {
	cert := newClientCert(t)
	tests := []struct {
		name string
		cert bool
	}{
		{name: "client secret"},
		{name: "certificate", cert: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := envOptions{users: 120, config: func(c *Config) { c.PageSize = 25 }}
			if tt.cert {
				o.cert = cert
			}
			e := newEnv(t, o)
			// Graph's clock passes the token's expiry just before page 3,
			// while the client's cache, on the local clock, still holds it.
			e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 3, ExpireTokens: true, Times: 1})
			inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if !inv.Complete() {
				t.Fatalf("problems: %q", inv.Problems)
			}
			checkSame(t, inv.Devices, e.managed())
			st := e.sim.Stats()
			if st.Tokens != 2 || st.Unauthorized != 1 {
				t.Fatalf("%d tokens issued and %d requests refused; want a second token after one 401", st.Tokens, st.Unauthorized)
			}
			if tt.cert && st.CertificateTokens != 2 {
				t.Fatalf("%d tokens for the certificate, want 2", st.CertificateTokens)
			}
			if !strings.Contains(e.logs.String(), "renewed it") {
				t.Error("renewal not logged")
			}
			// A later read uses the renewed token: no more token requests.
			if _, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{}); err != nil {
				t.Fatal(err)
			}
			if st := e.sim.Stats(); st.Tokens != 2 || st.Unauthorized != 1 {
				t.Fatalf("after another read: %d tokens, %d refusals", st.Tokens, st.Unauthorized)
			}
		})
	}
}

func TestTokenRefusedTwiceIsUnauthorized(t *testing.T) {
	e := newEnv(t, envOptions{users: 10})
	// Every token expires as it is used: renewal cannot help, and the
	// client must not loop.
	e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, ExpireTokens: true})
	_, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "InvalidAuthenticationToken") {
		t.Fatalf("err = %v, want ErrUnauthorized with Graph's code", err)
	}
	if st := e.sim.Stats(); st.Unauthorized != 2 || st.Tokens != 2 {
		t.Fatalf("%d refusals and %d tokens, want one renewal: 2 and 2", st.Unauthorized, st.Tokens)
	}
}

func TestConcurrentRenewalsShareOneToken(t *testing.T) {
	e := newEnv(t, envOptions{users: 150, config: func(c *Config) { c.PageSize = 10 }})
	if _, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{}); err != nil {
		t.Fatal(err)
	}
	e.sim.ExpireTokens()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.client.GroupMembers(t.Context(), "6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d01"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st := e.sim.Stats(); st.Tokens != 2 {
		t.Fatalf("%d tokens after six concurrent refusals, want 2 (one renewal shared)", st.Tokens)
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fault   graph.Fault
		wantErr bool
	}{
		{name: "one 503 is retried", fault: graph.Fault{Status: http.StatusServiceUnavailable, Times: 1}},
		{name: "slow token endpoint", fault: graph.Fault{Delay: 200 * time.Millisecond, Times: 1}},
		{name: "down for good", fault: graph.Fault{Status: http.StatusServiceUnavailable}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{users: 10})
			tt.fault.Path = e.sim.TokenPath()
			e.sim.AddFault(tt.fault)
			inv, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{})
			if tt.wantErr {
				if !errors.Is(err, ErrAuthentication) {
					t.Fatalf("err = %v, want ErrAuthentication", err)
				}
				if st := e.sim.Stats(); st.Graph != 0 {
					t.Fatalf("Graph reached without a token: %+v", st)
				}
				_, failed := e.calls.count(OpToken)
				if failed < 2 {
					t.Fatalf("observer saw %d failed token calls, want the retries", failed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, inv.Devices, e.managed())
		})
	}
}

func TestObserverSeesEveryRequest(t *testing.T) {
	e := newEnv(t, envOptions{users: 200, config: func(c *Config) { c.PageSize = 50 }})
	e.sim.AddFault(graph.Fault{Path: graph.PathManagedDevices, Page: 2, Status: http.StatusTooManyRequests, RetryAfter: "0", Times: 1})
	if _, err := e.client.ManagedDevices(t.Context(), engine.MDMQuery{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GroupMembers(t.Context(), "6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d01"); err != nil {
		t.Fatal(err)
	}
	st := e.sim.Stats()
	tests := []struct {
		name        string
		op          string
		all, failed int
	}{
		{name: "device pages and the retry", op: OpManagedDevices, all: st.ByPath[graph.PathManagedDevices] + 1, failed: 1},
		{name: "member pages", op: OpTransitiveMembers, all: st.Pages - st.ByPath[graph.PathManagedDevices]},
		{name: "token", op: OpToken, all: 1},
		{name: "discovery", op: OpDiscovery, all: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all, failed := e.calls.count(tt.op)
			if all != tt.all || failed != tt.failed || all == 0 {
				t.Fatalf("%s: %d calls, %d failed; want %d, %d", tt.op, all, failed, tt.all, tt.failed)
			}
		})
	}
	if sys := e.calls.systems(); len(sys) != 1 || sys[systemGraph] == 0 {
		t.Fatalf("systems reported: %v, want only %q", sys, systemGraph)
	}
}

func TestGraphOpTemplates(t *testing.T) {
	tests := []struct{ name, path, want string }{
		{name: "devices", path: "/v1.0/deviceManagement/managedDevices", want: OpManagedDevices},
		{name: "members, long cast", path: "/v1.0/groups/6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d01/transitiveMembers/microsoft.graph.user", want: OpTransitiveMembers},
		{name: "members, short cast", path: "/v1.0/groups/6F1C0A52-3B7E-4D2A-9C51-0A1E2B3C4D01/transitiveMembers/graph.user", want: OpTransitiveMembers},
		{name: "beta", path: "/beta/deviceManagement/managedDevices/", want: OpManagedDevices},
		{name: "root", path: "/v1.0/", want: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := graphOp(tt.path); got != tt.want {
				t.Fatalf("graphOp(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
