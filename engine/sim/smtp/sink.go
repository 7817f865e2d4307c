package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Log attribute keys.
const (
	keyAddr   = "addr"
	keyFrom   = "from"
	keyTo     = "to"
	keyUser   = "user"
	keyBytes  = "bytes"
	keyErr    = "err"
	keyDetail = "detail"
)

// Defaults for Options left zero.
const (
	defaultAddr            = "127.0.0.1:0"
	defaultDomain          = "smtp.easgate.test"
	defaultMaxMessageBytes = 10 << 20
	ioTimeout              = 30 * time.Second
)

// The SASL mechanisms the sink can offer.
const (
	MechPlain = "PLAIN"
	MechLogin = "LOGIN"
)

// Options configure a Sink. The zero value is a sink on 127.0.0.1 with a
// free port, no TLS and no authentication.
type Options struct {
	// Addr is the address to listen on; "" means 127.0.0.1:0.
	Addr string
	// Domain is the name the sink greets clients with.
	Domain string
	// TLSConfig, when set, offers STARTTLS with it; AUTH is then offered
	// only after STARTTLS, as Exchange's BasicAuthRequireTLS does.
	TLSConfig *tls.Config
	// RequireTLS refuses MAIL FROM (530 5.7.0) until the client has started TLS.
	RequireTLS bool
	// Username, when set, offers AUTH and requires it before MAIL FROM.
	// Any other user name or password is refused with 535 5.7.8.
	Username string
	Password string
	// Mechanisms are the SASL mechanisms offered (MechPlain, MechLogin);
	// nil offers both.
	Mechanisms []string
	// Delay is how long the sink holds each message's DATA before it
	// answers; SetDelay changes it later.
	Delay time.Duration
	// MaxMessageBytes refuses larger messages (552); 0 means 10 MiB.
	MaxMessageBytes int64
	// Spool, when set, is a directory where every accepted message is also
	// written as an .eml file (0600), so that another process (a test
	// driving `easgate sim`) can see what was delivered.
	Spool string
	// Logger receives the sink's logs; nil discards them.
	Logger *slog.Logger
}

// Message is one message the sink accepted.
type Message struct {
	From     string      // envelope sender (MAIL FROM)
	To       []string    // envelope recipients (RCPT TO), in order
	Header   mail.Header // the message's headers as received, not decoded
	Subject  string      // the Subject header, RFC 2047 words decoded
	Text     string      // the first text/plain part, transfer encoding decoded, line ends as \n
	HTML     string      // the first text/html part, likewise
	Raw      []byte      // the message exactly as received (after dot-unstuffing)
	Received time.Time   // when the sink accepted it, UTC
	TLS      bool        // the session had started TLS
	User     string      // the authenticated user name, "" without AUTH
	// ParseError says why the body could not be parsed; the message is kept
	// with whatever was parsed before the error.
	ParseError string
}

func (m Message) clone() Message {
	m.To = slices.Clone(m.To)
	m.Raw = slices.Clone(m.Raw)
	if m.Header != nil {
		h := make(mail.Header, len(m.Header))
		for k, v := range m.Header {
			h[k] = slices.Clone(v)
		}
		m.Header = h
	}
	return m
}

// Sink is a running SMTP sink. Its methods are safe for concurrent use.
type Sink struct {
	opts Options
	log  *slog.Logger
	addr string

	mu       sync.Mutex
	srv      *gosmtp.Server    // nil while down or closed
	ln       *trackingListener // srv's listener
	served   chan struct{}     // closed when srv's Serve returned
	cut      chan struct{}     // closed when srv goes down: ends pending delays
	down     bool
	closed   bool
	delay    time.Duration
	pressure bool // back pressure: MAIL FROM is refused with 452 4.3.1
	rejected map[string]bool
	deferred map[string]bool
	messages []Message

	sessions, tlsSessions, resumed atomic.Int64
}

// Stats count what a sink has served.
type Stats struct {
	// Sessions counts SMTP sessions (a connection's EHLO, and again after
	// STARTTLS); TLSSessions those over TLS, one per TLS handshake.
	Sessions    int64 `json:"sessions"`
	TLSSessions int64 `json:"tls_sessions"`
	Resumed     int64 `json:"tls_resumed"` // TLS sessions that resumed an earlier one
	Messages    int64 `json:"messages"`    // messages accepted
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	n := len(s.messages)
	s.mu.Unlock()
	return Stats{Sessions: s.sessions.Load(), TLSSessions: s.tlsSessions.Load(), Resumed: s.resumed.Load(), Messages: int64(n)}
}

// Start listens on opts.Addr and serves SMTP until Close.
func Start(opts Options) (*Sink, error) {
	if opts.Addr == "" {
		opts.Addr = defaultAddr
	}
	if opts.Domain == "" {
		opts.Domain = defaultDomain
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = defaultMaxMessageBytes
	}
	if opts.Mechanisms == nil {
		opts.Mechanisms = []string{MechPlain, MechLogin}
	}
	for _, m := range opts.Mechanisms {
		if m != MechPlain && m != MechLogin {
			return nil, fmt.Errorf("start smtp sink: mechanism %q: %w", m, ErrUnsupportedMechanism)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Spool != "" {
		if err := os.MkdirAll(opts.Spool, 0o700); err != nil {
			return nil, fmt.Errorf("start smtp sink: spool: %w", err)
		}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("start smtp sink on %s: %w", opts.Addr, err)
	}
	s := &Sink{
		opts:     opts,
		log:      log,
		addr:     ln.Addr().String(),
		delay:    opts.Delay,
		rejected: map[string]bool{},
		deferred: map[string]bool{},
	}
	s.mu.Lock()
	s.serveLocked(ln)
	s.mu.Unlock()
	s.log.Info("smtp sink listening", keyAddr, s.addr)
	return s, nil
}

// serveLocked starts a server generation on ln. s.mu must be held.
func (s *Sink) serveLocked(raw net.Listener) {
	cut := make(chan struct{})
	ln := &trackingListener{Listener: raw, conns: map[net.Conn]struct{}{}}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		cs, isTLS := c.TLSConnectionState()
		s.sessions.Add(1)
		if isTLS {
			s.tlsSessions.Add(1)
			if cs.DidResume {
				s.resumed.Add(1)
			}
		}
		return &session{sink: s, cut: cut, tls: isTLS}, nil
	}))
	srv.Domain = s.opts.Domain
	srv.TLSConfig = s.opts.TLSConfig
	// Without TLS there is no other way to offer AUTH; with TLS, only after STARTTLS.
	srv.AllowInsecureAuth = s.opts.TLSConfig == nil
	srv.MaxMessageBytes = s.opts.MaxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = ioTimeout
	srv.WriteTimeout = ioTimeout
	srv.ErrorLog = serverLog{s.log}

	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil {
			s.log.Debug("smtp sink stopped serving", keyErr, err)
		}
	}()
	s.srv, s.ln, s.served, s.cut = srv, ln, served, cut
}

// stopLocked closes the current server generation and returns what to
// wait for once s.mu is released.
func (s *Sink) stopLocked() <-chan struct{} {
	if s.srv == nil {
		return nil
	}
	close(s.cut)
	// go-smtp's Server.Close closes each session from another goroutine
	// while the session may be reading a BDAT chunk, a data race in
	// go-smtp. Cutting the connections under it instead ends each session
	// on its own goroutine; Shutdown then only waits for them.
	srv, served := s.srv, s.served
	_ = s.ln.Close() // Accept fails at once, even before Serve registered it
	s.ln.closeAll()
	s.srv, s.ln, s.served, s.cut = nil, nil, nil, nil
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*ioTimeout)
		defer cancel()
		// Shutdown reports closing the listener closed above as well: only
		// the deadline means a session outlived it.
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("smtp sink sessions outlived shutdown", keyErr, err)
		}
		<-served
	}()
	return done
}

// trackingListener keeps the connections it accepted, so that stopping
// the sink can cut them.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every connection accepted and still open.
func (l *trackingListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := slices.Collect(maps.Keys(l.conns))
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// trackedConn leaves its listener's set when closed.
type trackedConn struct {
	net.Conn
	l *trackingListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// Addr is the address the sink listens on, host:port.
func (s *Sink) Addr() string { return s.addr }

// Host is the host part of Addr.
func (s *Sink) Host() string {
	h, _, _ := net.SplitHostPort(s.addr)
	return h
}

// Port is the port part of Addr.
func (s *Sink) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Messages returns copies of the messages accepted so far, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = m.clone()
	}
	return out
}

// SetDown takes the sink down (true): the listener closes, so new
// connections are refused, and open sessions are cut. SetDown(false)
// listens on the same address again; it fails if the port was taken
// meanwhile or the sink is closed.
func (s *Sink) SetDown(down bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if down == s.down {
		s.mu.Unlock()
		return nil
	}
	if down {
		s.down = true
		wait := s.stopLocked()
		s.mu.Unlock()
		if wait != nil {
			<-wait
		}
		s.log.Info("smtp sink down", keyAddr, s.addr)
		return nil
	}
	defer s.mu.Unlock()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", s.addr, err)
	}
	s.down = false
	s.serveLocked(ln)
	s.log.Info("smtp sink up", keyAddr, s.addr)
	return nil
}

// RejectRecipient makes RCPT TO for addr (compared case-insensitively)
// fail permanently with 550 5.1.1.
func (s *Sink) RejectRecipient(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[strings.ToLower(addr)] = true
}

// DeferRecipient makes RCPT TO for addr (compared case-insensitively)
// fail temporarily with 451 4.3.0, as a busy or throttling server does.
func (s *Sink) DeferRecipient(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deferred[strings.ToLower(addr)] = true
}

// AcceptRecipient undoes RejectRecipient and DeferRecipient for addr.
func (s *Sink) AcceptRecipient(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rejected, strings.ToLower(addr))
	delete(s.deferred, strings.ToLower(addr))
}

// SetBackPressure makes the sink refuse MAIL FROM with 452 4.3.1, as an
// Exchange transport under back pressure (its disk or memory over the
// limit) does, until it is turned off again.
func (s *Sink) SetBackPressure(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pressure = on
}

func (s *Sink) underPressure() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pressure
}

// SetDelay makes the sink hold each message's DATA for d before it answers.
func (s *Sink) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Close stops the sink and cuts every open session. It is safe to call
// more than once.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	wait := s.stopLocked()
	s.mu.Unlock()
	if wait != nil {
		<-wait
	}
	s.log.Info("smtp sink closed", keyAddr, s.addr)
	return nil
}

// recipientFault returns the reply for a faulty recipient, or nil.
func (s *Sink) recipientFault(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch a := strings.ToLower(addr); {
	case s.rejected[a]:
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "Recipient rejected"}
	case s.deferred[a]:
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "Recipient temporarily unavailable, try again later"}
	}
	return nil
}

func (s *Sink) currentDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delay
}

func (s *Sink) store(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	n := len(s.messages)
	s.mu.Unlock()
	if s.opts.Spool == "" {
		return
	}
	name := filepath.Join(s.opts.Spool, fmt.Sprintf("%s-%06d.eml", m.Received.UTC().Format("20060102T150405.000000000Z"), n))
	if err := os.WriteFile(name, m.Raw, 0o600); err != nil {
		s.log.Warn("spool message", keyDetail, err.Error())
	}
}

// serverLog routes go-smtp's internal error log to slog at debug level:
// clients hanging up are routine for a sink.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Printf(format string, v ...any) {
	l.log.Debug("smtp server", keyDetail, fmt.Sprintf(format, v...))
}

func (l serverLog) Println(v ...any) {
	l.log.Debug("smtp server", keyDetail, strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

var _ io.Closer = (*Sink)(nil)
