package smtp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	netsmtp "net/smtp"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

func start(t *testing.T, opts Options) *Sink {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// client is what one test session does with go-smtp's client.
type client struct {
	startTLS *tls.Config
	auth     sasl.Client
	from     string
	to       []string
	body     []byte
}

// send runs one session against addr and returns the first error.
func (c client) send(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	cl := gosmtp.NewClient(conn)
	if c.startTLS != nil {
		if cl, err = gosmtp.NewClientStartTLS(conn, c.startTLS); err != nil {
			_ = conn.Close()
			return err
		}
	}
	defer cl.Close()
	if c.auth != nil {
		if err := cl.Auth(c.auth); err != nil {
			return err
		}
	}
	if err := cl.Mail(c.from, nil); err != nil {
		return err
	}
	for _, to := range c.to {
		if err := cl.Rcpt(to, nil); err != nil {
			return err
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(c.body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

func replyCode(err error) int {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		subject   string
		text      string
		html      string
		parseFail bool
	}{
		{
			name:    "alternative with quoted-printable text, base64 html and an encoded subject",
			file:    "alternative.eml",
			subject: "Action needed: enroll your iPhone – now",
			text:    "Hello Anna,\nplease enroll: https://portal.example/?upn=anna%40contoso.com",
			html:    `<p>Hello Anna,</p><a href="https://portal.example/">enroll</a>`,
		},
		{
			name:    "mixed with nested alternative and an attachment that is not the body",
			file:    "mixed.eml",
			subject: "plain subject",
			text:    "text body",
			html:    "<p>html body</p>",
		},
		{name: "single text part", file: "plain.eml", subject: "just text", text: "only a text body\n"},
		{name: "broken content type kept with an error", file: "badtype.eml", subject: "broken", parseFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := fixture(t, tt.file)
			m := parseMessage(raw)
			if m.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.subject)
			}
			if m.Text != tt.text {
				t.Errorf("Text = %q, want %q", m.Text, tt.text)
			}
			if m.HTML != tt.html {
				t.Errorf("HTML = %q, want %q", m.HTML, tt.html)
			}
			if (m.ParseError != "") != tt.parseFail {
				t.Errorf("ParseError = %q, want failure %v", m.ParseError, tt.parseFail)
			}
			if !bytes.Equal(m.Raw, raw) {
				t.Error("Raw is not the message as received")
			}
		})
	}
}

func TestParseDeepNestingStops(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	for i := range 20 {
		b.WriteString("--b" + strconv.Itoa(i) + "\r\nContent-Type: multipart/mixed; boundary=\"b" + strconv.Itoa(i+1) + "\"\r\n\r\n")
	}
	m := parseMessage([]byte(b.String()))
	if !strings.Contains(m.ParseError, "nested deeper") {
		t.Errorf("ParseError = %q, want the nesting limit", m.ParseError)
	}
}

func TestDeliveryOverTheWire(t *testing.T) {
	s := start(t, Options{})
	body := fixture(t, "alternative.eml")
	if err := (client{from: "mobile@contoso.com", to: []string{"anna@contoso.com", "ben@contoso.com"}, body: body}).send(s.Addr()); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "mobile@contoso.com" || strings.Join(m.To, ",") != "anna@contoso.com,ben@contoso.com" {
		t.Errorf("envelope = %q → %q", m.From, m.To)
	}
	if m.Header.Get("To") != "anna@contoso.com" || !strings.Contains(m.HTML, "enroll</a>") || !strings.HasPrefix(m.Text, "Hello Anna") {
		t.Errorf("parsed message = %+v", m)
	}
	if m.TLS || m.User != "" || m.Received.IsZero() {
		t.Errorf("TLS=%v User=%q Received=%v, want plain, anonymous, stamped", m.TLS, m.User, m.Received)
	}
	// Messages returns copies.
	msgs[0].To[0] = "changed"
	if s.Messages()[0].To[0] != "anna@contoso.com" {
		t.Error("Messages shares its slices with the sink")
	}
}

func TestTLSAndAuth(t *testing.T) {
	serverTLS, roots, err := NewTestTLS()
	if err != nil {
		t.Fatal(err)
	}
	_, otherRoots, err := NewTestTLS()
	if err != nil {
		t.Fatal(err)
	}
	clientTLS := func(pool *x509.CertPool) *tls.Config {
		return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	body := fixture(t, "plain.eml")
	tests := []struct {
		name     string
		opts     Options
		client   client
		wantCode int  // 0: accepted
		wantTLS  bool // on success
		wantUser string
		wantErr  bool // a non-SMTP failure (TLS verification)
	}{
		{
			name:     "starttls and plain",
			opts:     Options{TLSConfig: serverTLS, Username: "svc", Password: "s3cret"},
			client:   client{startTLS: clientTLS(roots), auth: sasl.NewPlainClient("", "svc", "s3cret")},
			wantTLS:  true,
			wantUser: "svc",
		},
		{
			name:     "starttls and login",
			opts:     Options{TLSConfig: serverTLS, Username: "svc", Password: "s3cret", Mechanisms: []string{MechLogin}},
			client:   client{startTLS: clientTLS(roots), auth: sasl.NewLoginClient("svc", "s3cret")},
			wantTLS:  true,
			wantUser: "svc",
		},
		{
			name:     "wrong password",
			opts:     Options{TLSConfig: serverTLS, Username: "svc", Password: "s3cret"},
			client:   client{startTLS: clientTLS(roots), auth: sasl.NewPlainClient("", "svc", "guess")},
			wantCode: 535,
		},
		{
			name:     "wrong user with login",
			opts:     Options{TLSConfig: serverTLS, Username: "svc", Password: "s3cret"},
			client:   client{startTLS: clientTLS(roots), auth: sasl.NewLoginClient("root", "s3cret")},
			wantCode: 535,
		},
		{
			name:     "auth required before mail",
			opts:     Options{Username: "svc", Password: "s3cret"},
			client:   client{},
			wantCode: 530,
		},
		{
			name:     "auth not offered before starttls",
			opts:     Options{TLSConfig: serverTLS, Username: "svc", Password: "s3cret"},
			client:   client{auth: sasl.NewPlainClient("", "svc", "s3cret")},
			wantCode: 523, // go-smtp's "TLS is required"
		},
		{
			name:     "tls required",
			opts:     Options{TLSConfig: serverTLS, RequireTLS: true},
			client:   client{},
			wantCode: 530,
		},
		{
			name:    "client does not trust the sink's authority",
			opts:    Options{TLSConfig: serverTLS},
			client:  client{startTLS: clientTLS(otherRoots)},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.opts)
			c := tt.client
			c.from, c.to, c.body = "mobile@contoso.com", []string{"chloe@contoso.com"}, body
			err := c.send(s.Addr())
			switch {
			case tt.wantErr:
				if err == nil || replyCode(err) != 0 {
					t.Fatalf("err = %v, want a TLS failure", err)
				}
			case tt.wantCode != 0:
				if replyCode(err) != tt.wantCode {
					t.Fatalf("err = %v, want reply %d", err, tt.wantCode)
				}
				if n := len(s.Messages()); n != 0 {
					t.Fatalf("%d messages accepted, want none", n)
				}
			default:
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				m := s.Messages()[0]
				if m.TLS != tt.wantTLS || m.User != tt.wantUser {
					t.Errorf("TLS=%v User=%q, want %v %q", m.TLS, m.User, tt.wantTLS, tt.wantUser)
				}
			}
		})
	}
}

func TestRecipientFaults(t *testing.T) {
	s := start(t, Options{})
	s.RejectRecipient("Gone@Contoso.com")
	s.DeferRecipient("busy@contoso.com")
	body := fixture(t, "plain.eml")
	tests := []struct {
		name string
		to   string
		code int
	}{
		{name: "rejected, case-insensitively", to: "gone@contoso.com", code: 550},
		{name: "deferred", to: "busy@contoso.com", code: 451},
		{name: "others accepted", to: "chloe@contoso.com", code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := client{from: "it@contoso.com", to: []string{tt.to}, body: body}.send(s.Addr())
			if replyCode(err) != tt.code || (tt.code == 0 && err != nil) {
				t.Fatalf("err = %v, want reply %d", err, tt.code)
			}
		})
	}
	s.AcceptRecipient("gone@contoso.com")
	if err := (client{from: "it@contoso.com", to: []string{"gone@contoso.com"}, body: body}).send(s.Addr()); err != nil {
		t.Fatalf("after AcceptRecipient: %v", err)
	}
}

func TestDownAndUp(t *testing.T) {
	s := start(t, Options{})
	body := fixture(t, "plain.eml")
	c := client{from: "it@contoso.com", to: []string{"chloe@contoso.com"}, body: body}
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if err := c.send(s.Addr()); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("send while down: %v, want connection refused", err)
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if err := c.send(s.Addr()); err != nil {
		t.Fatalf("send after up: %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	_ = s.Close()
	if err := s.SetDown(false); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetDown after Close = %v, want ErrClosed", err)
	}
}

func TestDelay(t *testing.T) {
	s := start(t, Options{Delay: 80 * time.Millisecond})
	body := fixture(t, "plain.eml")
	began := time.Now()
	if err := (client{from: "it@contoso.com", to: []string{"chloe@contoso.com"}, body: body}).send(s.Addr()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 80*time.Millisecond {
		t.Errorf("send took %v, want at least the delay", d)
	}

	// Close cuts a session waiting in its delay instead of hanging.
	s.SetDelay(time.Hour)
	done := make(chan error, 1)
	go func() {
		done <- client{from: "it@contoso.com", to: []string{"chloe@contoso.com"}, body: body}.send(s.Addr())
	}()
	time.Sleep(50 * time.Millisecond)
	_ = s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("send during Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cut the delayed session")
	}
}

func TestStartRejectsUnknownMechanism(t *testing.T) {
	if _, err := Start(Options{Mechanisms: []string{"CRAM-MD5"}}); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Fatalf("err = %v, want ErrUnsupportedMechanism", err)
	}
}

func TestSpoolWritesEveryAcceptedMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	s, err := Start(Options{Spool: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	raw := "From: a@contoso.com\r\nTo: b@contoso.com\r\nSubject: spooled\r\n\r\nhello\r\n"
	if err := netsmtp.SendMail(s.Addr(), nil, "a@contoso.com", []string{"b@contoso.com"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) != 1 {
		t.Fatalf("spool holds %v (%v), want one message", files, err)
	}
	got, err := os.ReadFile(files[0])
	if err != nil || !strings.Contains(string(got), "Subject: spooled") {
		t.Errorf("spooled message = %q, %v", got, err)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("spooled file mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestCloseWithAnOpenSessionLogsNoWarning closes the sink while a client
// holds a session open: the session is cut and the close says nothing
// alarming, as nothing outlived it.
func TestCloseWithAnOpenSessionLogsNoWarning(t *testing.T) {
	var logs bytes.Buffer
	s, err := Start(Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "220 ") {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if logs.Len() > 0 {
		t.Errorf("Close logged:\n%s", logs.String())
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the session outlived Close")
	}
}
