package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim"
	simexchange "easgate/engine/sim/exchange"
	"easgate/engine/sim/smtp"
	"easgate/engine/sim/winrm"
	"easgate/store"
)

// rewrite replaces what pattern (a multi-line regexp) matches in the
// simulator's config; it must match.
func rewrite(t *testing.T, s *sim.Sim, pattern, repl string) {
	t.Helper()
	b, err := os.ReadFile(s.Info.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)" + pattern)
	if !re.Match(b) {
		t.Fatalf("config has nothing matching %q:\n%s", pattern, b)
	}
	if err := os.WriteFile(s.Info.ConfigFile, re.ReplaceAll(b, []byte(repl)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// legacyTLS is a server configuration with the simulator CA's certificate
// that speaks only TLS 1.0 and 1.1.
func legacyTLS(t *testing.T, s *sim.Sim) *tls.Config {
	t.Helper()
	c := s.CA.ServerTLS().Clone()
	c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	c.NextProtos = nil
	return c
}

// serveTLS serves h over TLS with c on a free loopback port and returns
// its address. It checks that a client that allows the same versions can
// talk to it, so that a refusal later is the client's choice.
func serveTLS(t *testing.T, s *sim.Sim, c *tls.Config, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: c, ReadHeaderTimeout: 10 * time.Second,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: s.CA.Pool(), ServerName: "127.0.0.1",
		MinVersion: c.MinVersion, MaxVersion: c.MaxVersion}) //nolint:gosec // proves the server speaks only old TLS
	if err != nil {
		t.Fatalf("the legacy TLS server refuses a legacy client: %v", err)
	}
	if v := conn.ConnectionState().Version; v > tls.VersionTLS11 {
		t.Fatalf("the legacy TLS server negotiated %s", tls.VersionName(v))
	}
	_ = conn.Close()
	return l.Addr().String()
}

// httpsExchange starts another WinRM endpoint of the organisation over
// HTTPS with c and points the config at it, with the simulator's CA.
func httpsExchange(t *testing.T, s *sim.Sim, c *tls.Config) {
	t.Helper()
	accounts := map[string]string{sim.ServiceUser: s.Info.WinRMPassword}
	ws := winrm.New(winrm.Config{Hostname: "EX03", Users: accounts})
	ws.Handle("powershell.exe", simexchange.New(simexchange.Config{Org: s.Org, Accounts: accounts}))
	t.Cleanup(ws.Close)
	var addr string
	if c.MaxVersion != 0 && c.MaxVersion < tls.VersionTLS12 {
		addr = serveTLS(t, s, c, ws)
	} else {
		if _, err := ws.Start("127.0.0.1:0", c); err != nil {
			t.Fatal(err)
		}
		addr = ws.Addr()
	}
	rewrite(t, s, `^  servers: \[.*\]$`, "  servers: ["+strconv.Quote(addr)+"]")
	rewrite(t, s, `^  https: false\n  allow_insecure_transport: true.*\n`, "  https: true\n  ca_file: "+s.Info.CAFile+"\n")
}

// notifyErrors returns the errors of the notifications the store's
// journal holds.
func notifyErrors(t *testing.T, s *sim.Sim) []string {
	t.Helper()
	st, err := store.Open(s.Dir+"/easgate.db", store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j, err := st.Journal(context.Background(), engine.JournalQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range j {
		if e.Kind == engine.JournalNotify && !e.OK {
			out = append(out, e.Error)
		}
	}
	return out
}

// TestTransportSecurity checks, through the CLI and the real clients, that
// WinRM, Graph and SMTP verify the server's certificate by default, refuse
// a server that offers only TLS 1.0 or 1.1, and that credentials never go
// over plain HTTP unless allow_insecure_transport says so.
func TestTransportSecurity(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *sim.Sim)
		args  []string
		code  int
		// says is what the command's output must say; mailErr is what a
		// failed notification's journal entry must say.
		says    []string
		mailErr string
	}{
		{
			name:  "winrm over https with the CA",
			setup: func(t *testing.T, s *sim.Sim) { httpsExchange(t, s, s.CA.ServerTLS()) },
			args:  []string{"sync"}, code: exitOK, says: []string{"succeeded"},
		},
		{
			name: "winrm over https with an untrusted certificate",
			setup: func(t *testing.T, s *sim.Sim) {
				httpsExchange(t, s, s.CA.ServerTLS())
				rewrite(t, s, `^  ca_file: .*\n  auth:`, "  auth:")
			},
			args: []string{"sync"}, code: exitFailed, says: []string{"TLS with the WinRM service failed", "certificate signed by unknown authority"},
		},
		{
			name:  "winrm over https to a server of TLS 1.1 at most",
			setup: func(t *testing.T, s *sim.Sim) { httpsExchange(t, s, legacyTLS(t, s)) },
			args:  []string{"sync"}, code: exitFailed, says: []string{"TLS with the WinRM service failed", "protocol version"},
		},
		{
			name:  "winrm basic over http without allow_insecure_transport",
			setup: func(t *testing.T, s *sim.Sim) { rewrite(t, s, `^  allow_insecure_transport: true.*\n`, "") },
			args:  []string{"sync"}, code: exitUsage, says: []string{"exchange.https: basic over plain HTTP sends the credential unprotected"},
		},
		{
			name: "winrm ntlm over http without allow_insecure_transport",
			setup: func(t *testing.T, s *sim.Sim) {
				rewrite(t, s, `^  allow_insecure_transport: true.*\n`, "")
				rewrite(t, s, `^  auth: basic$`, "  auth: ntlm")
			},
			args: []string{"sync"}, code: exitUsage, says: []string{"exchange.https: ntlm over plain HTTP sends the credential unprotected"},
		},
		{
			name:  "graph certificate not trusted",
			setup: func(t *testing.T, s *sim.Sim) { rewrite(t, s, `^  ca_file: .*\n`, "") },
			args:  []string{"sync"}, code: exitFailed, says: []string{"read Intune", "certificate signed by unknown authority"},
		},
		{
			name: "graph offers only TLS 1.1",
			setup: func(t *testing.T, s *sim.Sim) {
				addr := serveTLS(t, s, legacyTLS(t, s), s.Graph)
				rewrite(t, s, `^  (graph_url|authority_url): .*$`, "  ${1}: https://"+addr)
			},
			args: []string{"sync"}, code: exitFailed, says: []string{"read Intune", "protocol version"},
		},
		{
			name:  "graph over plain http",
			setup: func(t *testing.T, s *sim.Sim) { rewrite(t, s, `^  graph_url: https://`, "  graph_url: http://") },
			args:  []string{"sync"}, code: exitUsage, says: []string{"graph_url"},
		},
		{
			name:  "smtp certificate not trusted",
			setup: func(t *testing.T, s *sim.Sim) { rewrite(t, s, `(smtp: \{[^}]*?) ca_file: [^,\n]*,`, "$1") },
			args:  []string{"sync"}, code: exitOK, says: []string{"notification(s) failed"}, mailErr: "certificate signed by unknown authority",
		},
		{
			name: "smtp offers only TLS 1.1",
			setup: func(t *testing.T, s *sim.Sim) {
				sink, err := smtp.Start(smtp.Options{Domain: "legacy.contoso.com", TLSConfig: legacyTLS(t, s), RequireTLS: true,
					Username: sim.SMTPUser, Password: s.Info.SMTPPassword})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sink.Close() })
				rewrite(t, s, `smtp: \{host: [^,]*, port: [0-9]+,`, "smtp: {host: 127.0.0.1, port: "+strconv.Itoa(sink.Port())+",")
			},
			args: []string{"sync"}, code: exitOK, says: []string{"notification(s) failed"}, mailErr: "protocol version",
		},
		{
			name:  "smtp password without starttls",
			setup: func(t *testing.T, s *sim.Sim) { rewrite(t, s, `starttls: true`, "starttls: false") },
			args:  []string{"sync"}, code: exitUsage, says: []string{"starttls"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, 15, 7)
			tt.setup(t, s)
			r := run(t, append(tt.args, "--config", s.Info.ConfigFile)...)
			out := r.stdout + r.stderr
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.code, out)
			}
			for _, w := range tt.says {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "goroutine ") || strings.Contains(out, ".go:") {
				t.Errorf("output holds a stack trace:\n%s", out)
			}
			assertNoSecret(t, "the output", []byte(out), secretsOf(s))
			if tt.mailErr != "" {
				errs := notifyErrors(t, s)
				if len(errs) == 0 {
					t.Fatal("no failed notification in the journal")
				}
				for _, e := range errs {
					if !strings.Contains(e, tt.mailErr) {
						t.Errorf("notification error %q does not say %q", e, tt.mailErr)
					}
				}
				if n := len(s.SMTP.Messages()); n != 0 {
					t.Errorf("the simulator's sink got %d mails", n)
				}
			}
		})
	}
}
