package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/masterzen/winrm"

	"easgate/engine"
)

// Client reads and changes Exchange through PowerShell over WinRM. It is
// safe for concurrent use; at most Config.Parallel PowerShell processes
// run at once.
type Client struct {
	cfg      Config
	log      *slog.Logger
	server   string
	url      string
	endpoint *winrm.Endpoint
	hc       *http.Client
	slots    chan struct{}
	wire     wireCounters
}

var (
	_ engine.ExchangeReader = (*Client)(nil)
	_ engine.ExchangeWriter = (*Client)(nil)
)

// New checks the configuration and returns a client for its first server.
// It does not connect; Test does.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	server := strings.TrimSpace(cfg.Servers[0])
	scheme := "http"
	if cfg.HTTPS {
		scheme = "https"
	}
	return &Client{
		cfg:      cfg,
		log:      log.With("component", "exchange"),
		server:   server,
		url:      scheme + "://" + net.JoinHostPort(server, strconv.Itoa(cfg.Port)) + "/wsman",
		endpoint: winrm.NewEndpoint(server, cfg.Port, cfg.HTTPS, cfg.InsecureSkipVerify, nil, nil, nil, cfg.ResponseTimeout),
		hc:       hc,
		slots:    make(chan struct{}, cfg.Parallel),
	}, nil
}

// Server returns the Exchange server the client talks to.
func (c *Client) Server() string { return c.server }

// Wire returns what went over the wire so far.
func (c *Client) Wire() WireStats { return c.wire.snapshot() }

// Scripts returns every script the client can send.
func (c *Client) Scripts() []Script { return Scripts() }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// sessionPayload is the part of every payload that opens the Exchange
// session: the service credential travels here, never in a command line.
type sessionPayload struct {
	Session  string   `json:"session"`
	URI      string   `json:"uri,omitempty"`
	User     string   `json:"user,omitempty"`
	Password string   `json:"password,omitempty"`
	Import   []string `json:"import"`
}

func (c *Client) session() sessionPayload {
	p := sessionPayload{Session: c.cfg.Session, Import: exchangeCmdlets}
	if c.cfg.Session == SessionRemote {
		p.URI = c.cfg.SessionURI
		if p.URI == "" {
			p.URI = "http://" + c.server + "/PowerShell/"
		}
		p.User, p.Password = c.cfg.Username, c.cfg.Password
	}
	return p
}

// scriptError turns a finished run's failure into an error: a non-zero
// exit code, with PowerShell's error records or plain stderr as the reason.
func scriptError(s Script, server string, res *runResult) error {
	if res.exitCode == 0 {
		return nil
	}
	msg := res.stderr.message()
	if msg == "" {
		msg = "no error text"
	}
	err := fmt.Errorf("%w: %s on %s exited %d: %s", ErrScript, s.Name, server, res.exitCode, msg)
	if sessionFailed(res.stderr) {
		return fmt.Errorf("%w: %w", ErrConnection, err)
	}
	return err
}

// sessionFailed reports whether the errors say the Exchange session could
// not be opened (unreachable endpoint, throttling budget): worth a retry.
func sessionFailed(s *stderrRecords) bool {
	for _, e := range s.Errors {
		if strings.Contains(e, "New-PSSession") && !strings.Contains(e, "Access is denied") {
			return true
		}
	}
	return false
}

// TestReport is what Test found.
type TestReport struct {
	Server          string        `json:"server"`
	Hostname        string        `json:"hostname"` // what `hostname` printed on the server
	PowerShell      string        `json:"powershell"`
	ExchangeVersion string        `json:"exchange_version"`
	Session         string        `json:"session"`
	Cmdlets         []string      `json:"cmdlets"` // the scripts' cmdlets the session has
	Missing         []string      `json:"missing,omitempty"`
	Elapsed         time.Duration `json:"elapsed"`
}

// Test checks connectivity: a plain `hostname` through cmd.exe, then the
// probe script, which opens the Exchange session and asks Get-Command for
// every cmdlet the scripts call. It returns ErrMissingCmdlets with the
// report when the account lacks some.
func (c *Client) Test(ctx context.Context) (*TestReport, error) {
	start := time.Now()
	rep := &TestReport{Server: c.server, Session: c.cfg.Session}
	host, err := c.hostname(ctx)
	if err != nil {
		return rep, err
	}
	rep.Hostname = host
	var probe *record
	var bad []string
	var parser lineParser
	res, err := c.run(ctx, probeScript, c.session(), func(n int, line []byte) {
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
		return rep, err
	}
	if err := scriptError(probeScript, c.server, res); err != nil {
		return rep, err
	}
	if probe == nil {
		return rep, fmt.Errorf("%w: %s on %s wrote no probe line (%s)", ErrScript, probeScript.Name, c.server, strings.Join(bad, "; "))
	}
	rep.PowerShell, rep.ExchangeVersion, rep.Cmdlets = string(probe.PS), string(probe.Exchange), probe.Cmdlets
	have := map[string]bool{}
	for _, name := range probe.Cmdlets {
		have[strings.ToLower(name)] = true
	}
	for _, name := range exchangeCmdlets {
		if !have[strings.ToLower(name)] {
			rep.Missing = append(rep.Missing, name)
		}
	}
	rep.Elapsed = time.Since(start)
	if len(rep.Missing) > 0 {
		return rep, fmt.Errorf("%w on %s: %s", ErrMissingCmdlets, c.server, strings.Join(rep.Missing, ", "))
	}
	return rep, nil
}

// hostname runs cmd.exe's hostname, the cheapest proof that WinRM works.
func (c *Client) hostname(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ResponseTimeout)
	defer cancel()
	client, tr, err := c.winrmClient(ctx)
	if err != nil {
		return "", err
	}
	defer tr.close()
	var out, errOut strings.Builder
	code, err := client.Run("hostname", &out, &errOut)
	if err != nil {
		return "", fmt.Errorf("run hostname on %s: %w", c.server, ctxErr(ctx, err))
	}
	if code != 0 {
		return "", fmt.Errorf("%w: hostname on %s exited %d: %s", ErrScript, c.server, code, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
