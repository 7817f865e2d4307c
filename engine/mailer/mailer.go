package mailer

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"easgate/engine"
)

// Log attribute keys.
const (
	keyDevice    = "device"
	keyTo        = "to"
	keyServer    = "server"
	keyResend    = "resend"
	keyTransient = "transient"
	keyCode      = "code"
	keyDuration  = "duration"
	keyErr       = "err"
	keyTemplate  = "template"
)

// Mailer sends enrollment notifications over SMTP. It is safe for
// concurrent use; concurrent sends use connections of their own, and a
// connection is reused for the next sends (connMaxMessages at most).
// Close it when done.
type Mailer struct {
	cfg  Config
	from *mail.Address
	tmpl *templates
	tls  *tls.Config
	log  *slog.Logger
	pool connPool
}

var _ engine.Mailer = (*Mailer)(nil)

// New checks cfg, loads and parses the notification template, and renders
// sample notifications with it, so that a broken template or enrollment URL
// fails here rather than during a run. It does not connect to the server.
// Errors wrap ErrConfig or ErrTemplate.
func New(cfg Config, log *slog.Logger) (*Mailer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, from, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	source, src := "built-in template", defaultTemplate
	if cfg.TemplateFile != "" {
		b, err := os.ReadFile(cfg.TemplateFile)
		if err != nil {
			return nil, fmt.Errorf("read notification template: %w: %w", ErrTemplate, err)
		}
		source, src = cfg.TemplateFile, string(b)
	}
	tmpl, err := parseTemplates(source, src, cfg.EnrollmentURL)
	if err != nil {
		return nil, err
	}
	for _, n := range samples() {
		if _, err := tmpl.render(n); err != nil {
			return nil, fmt.Errorf("check notification template with a sample for %s: %w", n.Device, err)
		}
	}
	m := &Mailer{
		cfg:  cfg,
		from: from,
		tmpl: tmpl,
		tls: &tls.Config{
			ServerName:         cfg.Host,
			MinVersion:         tls.VersionTLS12,
			RootCAs:            cfg.RootCAs,
			InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // the admin's explicit choice, off by default
			// Each connection carries connMaxMessages mails, so a large run
			// opens thousands; resuming the TLS session spares each new one
			// the certificate chain and its verification.
			ClientSessionCache: tls.NewLRUClientSessionCache(2 * connPoolSize),
		},
		log: log,
	}
	log.Info("mailer ready", keyServer, m.server(), keyTemplate, source)
	return m, nil
}

// Render renders the notification for n without sending it, as the preview
// command shows it. Errors wrap ErrTemplate or ErrConfig.
func (m *Mailer) Render(n engine.Notification) (Message, error) {
	return m.tmpl.render(n)
}

// Preview renders n for the console and the preview command, as the user
// would receive it.
func (m *Mailer) Preview(n engine.Notification) (engine.MailPreview, error) {
	msg, err := m.Render(n)
	if err != nil {
		return engine.MailPreview{}, err
	}
	return engine.MailPreview{To: n.To, Subject: msg.Subject, Text: msg.Text, HTML: msg.HTML}, nil
}

var _ engine.Previewer = (*Mailer)(nil)

// Send renders n and delivers it to n.To. A failure is a *SendError that
// matches ErrTransient or ErrPermanent with errors.Is; it never contains
// the password.
func (m *Mailer) Send(ctx context.Context, n engine.Notification) error {
	began := time.Now()
	err := m.send(ctx, n)
	if err != nil {
		se := newSendError(n, m.server(), err)
		m.log.Warn("notification failed", keyDevice, se.Device, keyTo, se.To,
			keyTransient, se.Transient(), keyCode, se.Code, keyErr, se.Err)
		return se
	}
	m.log.Info("notification sent", keyDevice, cleanLine(string(n.Device), maxFieldRunes), keyTo, n.To,
		keyResend, n.Resend, keyDuration, time.Since(began))
	return nil
}

func (m *Mailer) send(ctx context.Context, n engine.Notification) error {
	to, err := recipient(n.To)
	if err != nil {
		return err
	}
	rendered, err := m.tmpl.render(n)
	if err != nil {
		return err
	}
	return m.deliver(ctx, m.message(to, rendered), to.Address)
}

// deliver sends one message over a pooled connection, or a new one.
func (m *Mailer) deliver(ctx context.Context, msg *gomail.Msg, to string) (err error) {
	if o := m.cfg.Observer; o != nil {
		began := time.Now()
		defer func() { o.ObserveCall("smtp", "send", time.Since(began), err) }()
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	if c := m.pool.get(); c != nil {
		err := c.send(ctx, msg, m.from.Address, to)
		if err == nil {
			m.pool.put(c)
			return nil
		}
		c.close()
		if !unsent(err) || ctx.Err() != nil {
			return err
		}
		// The kept connection was gone before the server answered
		// anything (see unsent): send it over a new one.
	}
	c, err := m.dial(ctx)
	if err != nil {
		return err
	}
	if err := c.send(ctx, msg, m.from.Address, to); err != nil {
		c.close()
		return err
	}
	m.pool.put(c)
	return nil
}

// unsent reports whether a send over a kept connection failed before the
// server answered anything: the connection was gone, as when the server
// closed it while it was idle. With no reply the message counts as not
// delivered (RFC 5321 has clients treat a transaction without its reply
// as failed) and goes again over a new connection; an SMTP reply is the
// server's answer and is not sent again.
func unsent(err error) bool {
	if te, ok := errors.AsType[*txError](err); ok {
		_, reply := errors.AsType[*textproto.Error](te.err)
		return te.stage == stageMail && !reply
	}
	se, ok := errors.AsType[*gomail.SendError](err)
	if !ok {
		return false
	}
	switch se.Reason {
	case gomail.ErrConnCheck:
		return true
	case gomail.ErrSMTPMailFrom:
		return se.ErrorCode() == 0 // not an SMTP reply: a network error
	}
	return false
}

// dial opens a connection: TCP, EHLO, STARTTLS, AUTH.
func (m *Mailer) dial(ctx context.Context) (*conn, error) {
	c := &conn{}
	// go-mail joins host and port without brackets, which breaks IPv6
	// literals; dial the properly joined address instead.
	dial := func(dctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		raw, err := d.DialContext(dctx, network, m.server())
		if err != nil {
			return nil, err
		}
		c.raw = raw
		return raw, nil
	}
	client, err := gomail.NewClient(m.cfg.Host, m.clientOptions(dial)...)
	if err != nil {
		return nil, fmt.Errorf("set up smtp client: %w", err)
	}
	c.client = client
	c.timeout = m.cfg.Timeout + time.Second
	// go-mail watches the context only while it dials; closing the
	// connection when the context ends bounds the rest of the session too.
	err = c.guard(ctx, func() error {
		var err error
		c.smtp, err = client.DialToSMTPClientWithContext(ctx)
		return err
	})
	if err != nil {
		if c.raw != nil {
			_ = c.raw.Close()
		}
		return nil, err
	}
	c.pipelining, _ = c.smtp.Extension("PIPELINING")
	c.chunking, _ = c.smtp.Extension("CHUNKING")
	c.chunking = c.chunking && c.pipelining
	if ok, _ := c.smtp.Extension("8BITMIME"); ok {
		c.mailParams += " BODY=8BITMIME"
	}
	if ok, _ := c.smtp.Extension("SMTPUTF8"); ok {
		c.mailParams += " SMTPUTF8"
	}
	return c, nil
}

// Close closes the idle connections. Sends after Close open new ones.
func (m *Mailer) Close() error {
	m.pool.drain()
	return nil
}

// Connection reuse. Sending a notification over a connection of its own
// costs a TCP and a TLS handshake and an AUTH exchange each; a run that
// mails thousands of users spends most of its CPU there. A connection is
// kept after a send for the next one, for at most connMaxMessages
// messages (Exchange's receive connectors take 20 a connection by
// default: MaxMessagesPerConnection) and connIdle idle.
const (
	connMaxMessages = 20
	connIdle        = 10 * time.Second
	connPoolSize    = 8
)

// conn is one SMTP session.
type conn struct {
	client *gomail.Client
	smtp   *smtp.Client
	raw    net.Conn
	sent   int
	idle   *time.Timer // closes the connection when it idles too long

	timeout    time.Duration // each transaction's deadline, a backstop to the context
	pipelining bool          // the server offers PIPELINING (RFC 2920)
	chunking   bool          // and CHUNKING (RFC 3030): BDAT instead of DATA
	mailParams string        // MAIL FROM parameters the server's extensions call for
}

// guard runs fn, closing the connection if ctx ends first.
func (c *conn) guard(ctx context.Context, fn func() error) error {
	stop := context.AfterFunc(ctx, func() {
		if c.raw != nil {
			_ = c.raw.Close()
		}
	})
	err := fn()
	stop()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w: %w", cerr, err) // the real cause, not "use of closed network connection"
		}
	}
	return err
}

// send sends one message. go-mail's NOOP before each message is turned
// off (a round trip per mail for nothing); a connection the server has
// dropped fails at MAIL FROM instead, and deliver sends again on a new one.
func (c *conn) send(ctx context.Context, msg *gomail.Msg, from, to string) error {
	err := c.guard(ctx, func() error {
		if !c.pipelining {
			return c.client.SendWithSMTPClient(c.smtp, msg)
		}
		return c.transact(msg, from, to)
	})
	if err == nil {
		c.sent++
	}
	return err
}

// Stages of a pipelined transaction, for errors.
const (
	stageMail = "MAIL FROM"
	stageRcpt = "RCPT TO"
	stageData = "DATA"
	stageBody = "message"
)

// txError is a failed stage of a pipelined transaction.
type txError struct {
	stage string
	err   error
}

func (e *txError) Error() string { return "smtp " + e.stage + ": " + e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

// transact sends one message with its commands pipelined (RFC 2920,
// which Exchange's receive connectors offer). With CHUNKING (RFC 3030,
// offered too) MAIL FROM, RCPT TO and BDAT LAST with the whole message go
// out in one write: one round trip per mail, and no dot-stuffing. Without
// it MAIL FROM, RCPT TO and DATA go together, then the message: two round
// trips. Each address is a bare address checked by net/mail, so it cannot
// carry a line break into the command stream.
func (c *conn) transact(msg *gomail.Msg, from, to string) error {
	if err := c.smtp.UpdateDeadline(c.timeout); err != nil {
		return &txError{stageMail, err}
	}
	var body *bytes.Buffer
	if c.chunking {
		// The message is built before any command goes out: BDAT needs its
		// size, and a message that cannot be built leaves nothing half
		// written in the session.
		body = bodies.Get().(*bytes.Buffer)
		defer bodies.Put(body)
		body.Reset()
		if _, err := msg.WriteTo(body); err != nil {
			return &txError{stageBody, err}
		}
	}
	t := c.smtp.Text
	t.W.WriteString("MAIL FROM:<" + from + ">" + c.mailParams + "\r\n")
	t.W.WriteString("RCPT TO:<" + to + ">\r\n")
	last := struct {
		stage string
		code  int
	}{stageData, 354}
	if c.chunking {
		t.W.WriteString("BDAT " + strconv.Itoa(body.Len()) + " LAST\r\n")
		t.W.Write(body.Bytes())
		last.stage, last.code = stageBody, 250
	} else {
		t.W.WriteString("DATA\r\n")
	}
	if err := t.W.Flush(); err != nil {
		return &txError{stageMail, err}
	}
	// Every reply is read, even after a refusal, to keep the session in
	// step; the first failure is the one reported. A server reads a
	// chunk whether or not it accepts its BDAT.
	var first error
	for _, r := range []struct {
		stage string
		code  int
	}{{stageMail, 250}, {stageRcpt, 25}, last} {
		_, _, err := t.ReadResponse(r.code)
		if err == nil {
			continue
		}
		if _, reply := errors.AsType[*textproto.Error](err); !reply {
			return cmp.Or(first, error(&txError{r.stage, err})) // the connection is gone
		}
		if first == nil {
			first = &txError{r.stage, err}
		}
		if r.stage == stageData {
			return first // DATA refused: no message follows
		}
	}
	if c.chunking {
		return first
	}
	if first != nil {
		// The server refused MAIL or RCPT yet answered DATA with 354: end
		// the empty message, which it then refuses too.
		_, _ = t.W.WriteString(".\r\n")
		_ = t.W.Flush()
		_, _, _ = t.ReadResponse(250)
		return first
	}
	w := t.DotWriter()
	if _, err := msg.WriteTo(w); err != nil {
		return &txError{stageBody, err}
	}
	if err := w.Close(); err != nil {
		return &txError{stageBody, err}
	}
	if _, _, err := t.ReadResponse(250); err != nil {
		return &txError{stageBody, err}
	}
	return nil
}

// bodies holds buffers for messages sent in one BDAT chunk.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// close ends the session with QUIT, or drops it.
func (c *conn) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.client.CloseWithSMTPClient(c.smtp)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if c.raw != nil {
		_ = c.raw.Close()
	}
}

// connPool keeps idle connections.
type connPool struct {
	mu   sync.Mutex
	idle []*conn
}

func (p *connPool) get() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.idle.Stop() {
			return c
		}
		// Its idle timer fired and is closing it.
	}
	return nil
}

func (p *connPool) put(c *conn) {
	if c.sent >= connMaxMessages {
		go c.close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= connPoolSize {
		go c.close()
		return
	}
	c.idle = time.AfterFunc(connIdle, func() {
		p.mu.Lock()
		for i, x := range p.idle {
			if x == c {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		c.close()
	})
	p.idle = append(p.idle, c)
}

func (p *connPool) drain() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		if c.idle.Stop() {
			c.close()
		}
	}
}

func (m *Mailer) clientOptions(dial gomail.DialContextFunc) []gomail.Option {
	policy := gomail.NoTLS
	if m.cfg.StartTLS {
		policy = gomail.TLSMandatory // never opportunistic: no TLS, no mail
	}
	opts := []gomail.Option{
		gomail.WithPort(m.cfg.Port),
		// The context bounds the whole send; go-mail's deadline per command
		// is only a backstop, so that a slow server reports the timeout.
		gomail.WithTimeout(m.cfg.Timeout + time.Second),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSConfig(m.tls),
		gomail.WithTLSPolicy(policy),
		// A delivered message ends its transaction and the next MAIL
		// starts a new one (RFC 5321 3.3): RSET after every message would
		// be a round trip per mail for nothing. go-mail still resets
		// after a failed one.
		gomail.WithoutRset(),
		gomail.WithoutNoop(),
	}
	if m.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLogin{
			user: m.cfg.Username, password: m.cfg.Password, host: m.cfg.Host,
		}))
	}
	return opts
}

// message builds the mail. Header values are single lines by construction
// (cleanLine, a parsed address); go-mail encodes what is not ASCII.
func (m *Mailer) message(to *mail.Address, r Message) *gomail.Msg {
	msg := gomail.NewMsg()
	msg.FromMailAddress(m.from)
	msg.ToMailAddress(to)
	msg.Subject(r.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetUserAgent("easgate") // lets transport rules and message traces find these mails
	// Suppress out-of-office and other automatic replies to a no-reply
	// sender (RFC 3834; Exchange reads X-Auto-Response-Suppress).
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Auto-Response-Suppress", "OOF, AutoReply")
	// The parts are written from the rendered strings when the message
	// is: SetBodyString would copy each into a buffer of its own first.
	msg.SetBodyWriter(gomail.TypeTextPlain, writeString(r.Text))
	if r.HTML != "" {
		msg.AddAlternativeWriter(gomail.TypeTextHTML, writeString(r.HTML))
	}
	return msg
}

// writeString returns a go-mail body writer that writes s.
func writeString(s string) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := io.WriteString(w, s)
		return int64(n), err
	}
}

// recipient parses a notification's To as one bare address; anything that
// could smuggle a header or a second recipient is refused.
func recipient(s string) (*mail.Address, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || isFormatMark(r) }) {
		return nil, fmt.Errorf("%w: contains control characters", ErrRecipient)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecipient, err)
	}
	return &mail.Address{Address: a.Address}, nil
}

func (m *Mailer) server() string {
	return net.JoinHostPort(m.cfg.Host, strconv.Itoa(m.cfg.Port))
}
