package exchange

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"easgate/engine"
)

// Log attribute keys.
const (
	logServer = "server"
	logError  = "error"
)

// Client reads and changes Exchange through PowerShell over WinRM. It is
// safe for concurrent use; at most Config.Parallel PowerShell processes
// run at once. Close it when done: it deletes the shells it keeps open.
type Client struct {
	cfg       Config
	log       *slog.Logger
	tlsConfig *tls.Config
	servers   []*server
	slots     chan struct{}
	wire      wireCounters
	bg        sync.WaitGroup

	mu         sync.Mutex
	active     *server
	closed     bool
	discovered []ServerInfo
}

var (
	_ engine.ExchangeReader = (*Client)(nil)
	_ engine.ExchangeWriter = (*Client)(nil)
	_ engine.ExchangeAdmin  = (*Client)(nil)
	_ engine.HealthReporter = (*Client)(nil)
)

// New checks the configuration and returns a client for its servers. It
// does not connect; Test does.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	cfg, eps, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := newBaseTransport(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: log.With("component", "exchange"), tlsConfig: base.TLSClientConfig,
		slots: make(chan struct{}, cfg.Parallel)}
	for _, ep := range eps {
		auth, err := newAuthenticator(cfg, base, ep.host)
		if err != nil {
			return nil, err
		}
		c.servers = append(c.servers, newServer(c, ep, auth))
	}
	if !cfg.HTTPS {
		c.log.Warn("exchange WinRM over plain HTTP: the credential and every script travel unprotected",
			"auth", cfg.Auth, "allow_insecure_transport", cfg.AllowInsecureTransport)
	}
	return c, nil
}

// Server returns the Exchange server the last call used, or the first
// configured one before any call.
func (c *Client) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active != nil {
		return c.active.name
	}
	return c.servers[0].name
}

// Servers returns the configured servers, in failover order.
func (c *Client) Servers() []string {
	out := make([]string, len(c.servers))
	for i, s := range c.servers {
		out[i] = s.name
	}
	return out
}

func (c *Client) setActive(s *server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = s
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Wire returns what went over the wire so far.
func (c *Client) Wire() WireStats { return c.wire.snapshot() }

// Scripts returns every script the client can send.
func (c *Client) Scripts() []Script { return Scripts() }

// Close deletes the shells kept for reuse, waits for the cleanup of
// failed runs and releases idle connections. Calls after Close fail with
// ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	for _, s := range c.servers {
		s.closeIdle()
	}
	c.bg.Wait()
	return nil
}

// background runs cleanup that must not hold up the caller; Close waits
// for it.
func (c *Client) background(fn func()) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		fn()
	}()
}

// observe tells the observer about a call, if there is one.
func (c *Client) observe(op string, d time.Duration, err error) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.ObserveCall("exchange", op, d, err)
	}
}

// sessionPayload is the part of every payload that opens the Exchange
// session: the service credential travels here, never in a command line.
type sessionPayload struct {
	Session  string   `json:"session"`
	URI      string   `json:"uri,omitempty"`
	User     string   `json:"user,omitempty"`
	Password string   `json:"password,omitempty"`
	Import   []string `json:"import"`
}

// session returns the session part of a payload for a script run on srv.
func (c *Client) session(srv *server) sessionPayload {
	p := sessionPayload{Session: c.cfg.Session, Import: exchangeCmdlets}
	if c.cfg.Session == SessionRemote {
		p.URI = c.cfg.SessionURI
		if p.URI == "" {
			p.URI = "http://" + srv.host + "/PowerShell/"
		}
		p.User, p.Password = c.cfg.Username, c.cfg.Password
	}
	return p
}

// scriptError turns a finished run's failure into an error: a non-zero
// exit code, with PowerShell's error records or plain stderr as the reason.
func scriptError(s Script, res *runResult) error {
	if res == nil || res.exitCode == 0 {
		return nil
	}
	msg := res.stderr.message()
	if msg == "" {
		msg = "no error text"
	}
	err := fmt.Errorf("%w: %s on %s exited %d: %s", ErrScript, s.Name, res.server, res.exitCode, msg)
	if sessionFailed(res.stderr) {
		return &connError{kind: ErrConnection, err: err}
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
