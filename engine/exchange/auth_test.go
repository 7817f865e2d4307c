package exchange_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/exchange"
	"easgate/engine/sim/simtls"
	simwinrm "easgate/engine/sim/winrm"
)

func TestNTLMAndBasicOverTLS(t *testing.T) {
	tests := []struct {
		name   string
		auth   string
		server simwinrm.Config // which schemes the server takes
		ntlm   bool
	}{
		{name: "ntlm against a Negotiate-only server", auth: exchange.AuthNTLM, server: simwinrm.Config{DisableBasic: true}, ntlm: true},
		{name: "basic against a Basic-only server", auth: exchange.AuthBasic, server: simwinrm.Config{DisableNegotiate: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := generated(60)
			e := newEnv(t, o, withTLS, func(c *envConfig) {
				c.client.Auth, c.client.AllowInsecureTransport = tt.auth, false
				c.winrm.DisableBasic, c.winrm.DisableNegotiate = tt.server.DisableBasic, tt.server.DisableNegotiate
			})
			inv, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			checkInventory(t, inv, o, time.Time{})
			var changes []engine.Change
			for _, d := range inv.Devices[:20] {
				changes = append(changes, engine.Change{Mailbox: d.Mailbox, DeviceID: d.DeviceID, List: engine.ListBlocked, Op: engine.OpAdd})
			}
			results, err := e.client.ApplyChanges(context.Background(), changes)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if !r.OK {
					t.Errorf("change failed: %+v", r)
				}
			}
			if _, err := e.client.Test(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := e.winrm.Stats()
			if tt.ntlm {
				// One handshake per connection, not per request: the
				// connections stay authenticated.
				if st.NTLMLogons == 0 || st.NTLMLogons > 8 || st.Requests < 5*st.NTLMLogons {
					t.Errorf("%d NTLM logons for %d requests", st.NTLMLogons, st.Requests)
				}
			} else if st.NTLMLogons != 0 || st.NTLMChallenges != 0 {
				t.Errorf("basic made NTLM logons: %+v", st)
			}
			if st.Unauthorized != 0 {
				t.Errorf("%d requests refused", st.Unauthorized)
			}
		})
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestFailureModesAreDistinctAndReadable: a wrong password, an unreachable
// server, a TLS failure and an HTTP 500 each come back as their own error,
// which says what happened and never carries the password.
func TestFailureModesAreDistinctAndReadable(t *testing.T) {
	other, err := simtls.New()
	if err != nil {
		t.Fatal(err)
	}
	kinds := []error{exchange.ErrUnauthorized, exchange.ErrUnreachable, exchange.ErrTLS, exchange.ErrServerError}
	tests := []struct {
		name  string
		opts  []envOption
		setup func(*env)
		is    error
		step  string
		want  []string
	}{
		{name: "wrong password, basic", opts: []envOption{func(c *envConfig) { c.client.Password = "not-the-password" }},
			is: exchange.ErrUnauthorized, step: exchange.StepAuthenticate, want: []string{"refused the credentials", "401", "basic authentication of " + user}},
		{name: "wrong password, ntlm", opts: []envOption{withTLS, func(c *envConfig) { c.client.Auth, c.client.Password = exchange.AuthNTLM, "not-the-password" }},
			is: exchange.ErrUnauthorized, step: exchange.StepAuthenticate, want: []string{"refused the credentials", "ntlm authentication"}},
		{name: "server down", setup: func(e *env) {
			if err := e.winrm.SetDown(true); err != nil {
				t.Fatal(err)
			}
		}, is: exchange.ErrUnreachable, step: exchange.StepConnect, want: []string{"cannot reach the WinRM service", "connection refused"}},
		{name: "untrusted certificate", opts: []envOption{withTLS, func(c *envConfig) { c.client.CAPEM = other.CertPEM() }},
			is: exchange.ErrTLS, step: exchange.StepConnect, want: []string{"TLS with the WinRM service failed", "certificate signed by unknown authority"}},
		{name: "https to a plain HTTP port", opts: []envOption{func(c *envConfig) { c.client.HTTPS, c.client.AllowInsecureTransport = true, false }},
			is: exchange.ErrTLS, step: exchange.StepConnect, want: []string{"TLS with the WinRM service failed"}},
		{name: "HTTP 500", setup: func(e *env) { e.winrm.SetFault(simwinrm.OpCreate, simwinrm.Fault{Status: 500}) },
			is: exchange.ErrServerError, step: exchange.StepAuthenticate, want: []string{"answered with an error", "HTTP 500", "w:InternalError", "internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, generated(3), tt.opts...)
			if tt.setup != nil {
				tt.setup(e)
			}
			_, err := e.client.Inventory(context.Background(), engine.InventoryQuery{})
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			for _, k := range kinds {
				if k != tt.is && errors.Is(err, k) {
					t.Errorf("err %v is also %v", err, k)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), password) {
				t.Errorf("error %q carries a password", err)
			}
			// exchange test names the step that failed.
			rep, err := e.client.Test(context.Background())
			if !errors.Is(err, tt.is) {
				t.Fatalf("test: err = %v, want %v", err, tt.is)
			}
			steps := rep.Servers[0].Steps
			last := steps[len(steps)-1]
			if last.OK || last.Name != tt.step || last.Error == "" {
				t.Errorf("steps %+v: want %s to fail", steps, tt.step)
			}
		})
	}
}

func TestPlainHTTPNeedsItsOptIn(t *testing.T) {
	_, err := exchange.New(exchange.Config{Servers: []string{freeAddr(t)}, Auth: exchange.AuthNTLM, Username: user, Password: password}, nil)
	if !errors.Is(err, exchange.ErrConfig) || !strings.Contains(err.Error(), "over http") {
		t.Fatalf("err = %v", err)
	}
}
