package exchange

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"easgate/engine"
)

// Test step names, in the order Test takes them.
const (
	StepConnect      = "connect"      // TCP to the WinRM port, and TLS
	StepAuthenticate = "authenticate" // WinRM accepts the credential: cmd.exe's hostname runs
	StepSession      = "session"      // powershell.exe opens the Exchange session
	StepPermissions  = "permissions"  // Get-Command finds every cmdlet the scripts call
)

// TestStep is one step of a server's test.
type TestStep struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ServerReport is what Test found on one server.
type ServerReport struct {
	Server          string     `json:"server"`
	OK              bool       `json:"ok"`
	Steps           []TestStep `json:"steps"`
	Hostname        string     `json:"hostname,omitempty"` // what `hostname` printed on the server
	PowerShell      string     `json:"powershell,omitempty"`
	ExchangeVersion string     `json:"exchange_version,omitempty"`
	Session         string     `json:"session"`
	Cmdlets         []string   `json:"cmdlets,omitempty"` // the scripts' cmdlets the session has
	Missing         []string   `json:"missing,omitempty"`
	ElapsedMS       int64      `json:"elapsed_ms"`
}

// TestReport is what Test found on every configured server.
type TestReport struct {
	Servers []ServerReport `json:"servers"`
	// InUse is the server calls go to now: the first that passed every
	// step, else the last that answered; empty when none did.
	InUse  string          `json:"in_use"`
	Health []engine.Health `json:"health"`
	// ClientAccess are the servers with client access services Exchange
	// knows of (Get-ExchangeServer), from the first server that passed.
	ClientAccess []ServerInfo `json:"client_access_servers,omitempty"`
}

// Test checks every configured server, step by step: the TCP connection
// and TLS, WinRM authentication (cmd.exe's hostname), the Exchange
// session and the permissions (Get-Command of every cmdlet the scripts
// call). It returns the report and, when a server failed a step, an error
// wrapping that step's cause (ErrUnreachable, ErrTLS, ErrUnauthorized,
// ErrServerError, ErrScript or ErrMissingCmdlets).
func (c *Client) Test(ctx context.Context) (*TestReport, error) {
	rep := &TestReport{}
	var errs []error
	var passed *server
	for _, s := range c.servers {
		sr, err := c.testServer(ctx, s)
		rep.Servers = append(rep.Servers, *sr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		} else if passed == nil {
			passed = s
		}
	}
	if passed != nil {
		if found, err := c.discover(ctx, passed); err == nil {
			rep.ClientAccess = found
		} else {
			c.log.Warn("exchange server discovery failed", logServer, passed.name, logError, err)
		}
		c.setActive(passed)
	}
	c.mu.Lock()
	if c.active != nil {
		rep.InUse = c.active.name
	}
	c.mu.Unlock()
	rep.Health = c.Health()
	return rep, errors.Join(errs...)
}

// testServer runs Test's steps on one server, stopping at the first that
// fails.
func (c *Client) testServer(ctx context.Context, s *server) (*ServerReport, error) {
	start := time.Now()
	rep := &ServerReport{Server: s.name, Session: c.cfg.Session}
	defer func() { rep.ElapsedMS = time.Since(start).Milliseconds() }()
	step := func(name, detail string, err error) error {
		st := TestStep{Name: name, OK: err == nil, Detail: detail}
		if err != nil {
			st.Error = err.Error()
		}
		rep.Steps = append(rep.Steps, st)
		return err
	}

	detail, err := s.dial(ctx, c.tlsConfig)
	if err := step(StepConnect, detail, err); err != nil {
		s.failed(err)
		return rep, err
	}
	host, err := c.hostname(ctx, s)
	if err := step(StepAuthenticate, "hostname "+host, err); err != nil {
		return rep, err
	}
	rep.Hostname = host
	probe, err := c.probe(ctx, s)
	if err != nil {
		return rep, step(StepSession, c.cfg.Session, err)
	}
	rep.PowerShell, rep.ExchangeVersion, rep.Cmdlets = string(probe.PS), string(probe.Exchange), probe.Cmdlets
	_ = step(StepSession, fmt.Sprintf("%s session, PowerShell %s, Exchange %s", c.cfg.Session, rep.PowerShell, rep.ExchangeVersion), nil)
	have := map[string]bool{}
	for _, name := range probe.Cmdlets {
		have[strings.ToLower(name)] = true
	}
	for _, name := range exchangeCmdlets {
		if !have[strings.ToLower(name)] {
			rep.Missing = append(rep.Missing, name)
		}
	}
	if len(rep.Missing) > 0 {
		return rep, step(StepPermissions, "", fmt.Errorf("%w on %s: %s", ErrMissingCmdlets, s.name, strings.Join(rep.Missing, ", ")))
	}
	_ = step(StepPermissions, fmt.Sprintf("all %d cmdlets", len(exchangeCmdlets)), nil)
	rep.OK = true
	return rep, nil
}

// dial opens a TCP connection to the server's WinRM port and, over HTTPS,
// completes a TLS handshake; it says what it found.
func (s *server) dial(ctx context.Context, tlsConfig *tls.Config) (string, error) {
	ep := s.endpoint
	addr := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", classify(err)
	}
	defer conn.Close()
	if !s.c.cfg.HTTPS {
		return "tcp " + addr + " (plain HTTP)", nil
	}
	cfg := tlsConfig.Clone()
	cfg.ServerName = ep.Host
	tc := tls.Client(conn, cfg)
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return "", &connError{kind: ErrTLS, err: err}
	}
	st := tc.ConnectionState()
	detail := "tcp " + addr + ", " + tls.VersionName(st.Version)
	if len(st.PeerCertificates) > 0 {
		cert := st.PeerCertificates[0]
		detail += ", certificate " + cert.Subject.CommonName + " until " + cert.NotAfter.UTC().Format("2006-01-02")
	}
	return detail, nil
}

// hostname runs cmd.exe's hostname on the server: the cheapest proof that
// WinRM takes the credential.
func (c *Client) hostname(ctx context.Context, s *server) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ResponseTimeout)
	defer cancel()
	var out strings.Builder
	none := func(*server) ([]byte, error) { return nil, nil }
	start := time.Now()
	res, err := c.command(ctx, s, "hostname", "hostname", none, nil, func(_ int, line []byte) { out.Write(line) })
	c.observe("hostname", time.Since(start), err)
	if err != nil {
		return "", fmt.Errorf("run hostname: %w", err)
	}
	if res.exitCode != 0 {
		return "", fmt.Errorf("%w: hostname on %s exited %d: %s", ErrScript, s.name, res.exitCode, res.stderr.message())
	}
	return strings.TrimSpace(out.String()), nil
}

// probe runs the probe script on the server: it opens the Exchange
// session and asks Get-Command for every cmdlet the scripts call.
func (c *Client) probe(ctx context.Context, s *server) (*record, error) {
	var probe *record
	var bad []string
	var parser lineParser
	payload := func(sp sessionPayload) any { return sp }
	res, err := c.runOn(ctx, s, probeScript, payload, func(n int, line []byte) {
		err := parser.parse(line, func(r *record) {
			if r.T == "probe" {
				p := *r
				probe = &p
			}
		})
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", n, err))
		}
	})
	if err != nil {
		return nil, err
	}
	if err := scriptError(probeScript, res); err != nil {
		return nil, err
	}
	if probe == nil {
		return nil, fmt.Errorf("%w: %s on %s wrote no probe line (%s)", ErrScript, probeScript.Name, s.name, strings.Join(bad, "; "))
	}
	return probe, nil
}
