package mailer

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"easgate/engine"
	smtpsink "easgate/engine/sim/smtp"
)

const (
	testUser     = "svc-easgate"
	testPassword = "Pa55-w0rd-n0t-in-errors"
	testURL      = "https://portal.example.com/enroll?upn={{.Mailbox}}&device={{.DeviceID}}"
	renderedURL  = "https://portal.example.com/enroll?upn=anna%40contoso.com&device=ApplF17XK2L9Q4MN"
)

func tlsFixture(t *testing.T) (serverOpts smtpsink.Options, roots, otherRoots *x509.CertPool) {
	t.Helper()
	cfg, roots, err := smtpsink.NewTestTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := smtpsink.NewTestTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return smtpsink.Options{TLSConfig: cfg}, roots, other
}

func startSink(t *testing.T, opts smtpsink.Options) *smtpsink.Sink {
	t.Helper()
	s, err := smtpsink.Start(opts)
	if err != nil {
		t.Fatalf("start sink: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// config points a mailer at the sink.
func config(s *smtpsink.Sink) Config {
	return Config{
		Host:          s.Host(),
		Port:          s.Port(),
		From:          "IT <mobile@contoso.com>",
		EnrollmentURL: testURL,
		Timeout:       5 * time.Second,
	}
}

func newMailer(t *testing.T, cfg Config) *Mailer {
	t.Helper()
	m, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func notification() engine.Notification {
	return engine.Notification{
		Device:      engine.KeyOf("anna@contoso.com", "ApplF17XK2L9Q4MN"),
		Mailbox:     "anna@contoso.com",
		To:          "anna@contoso.com",
		DeviceID:    "ApplF17XK2L9Q4MN",
		DeviceType:  "iPhone",
		DeviceModel: "iPhone15C2",
		DeviceOS:    "iOS 17.5.1 21F90",
		FirstSync:   time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		Access:      engine.AccessBlock,
		Reason:      "not enrolled in Intune (no MDM record with EAS ID ApplF17XK2L9Q4MN)",
	}
}

func onlyMessage(t *testing.T, s *smtpsink.Sink) smtpsink.Message {
	t.Helper()
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("sink holds %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func TestSendDeliversNotification(t *testing.T) {
	s := startSink(t, smtpsink.Options{})
	m := newMailer(t, config(s))
	n := notification()
	if err := m.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want, err := m.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	got := onlyMessage(t, s)
	if got.From != "mobile@contoso.com" || len(got.To) != 1 || got.To[0] != "anna@contoso.com" {
		t.Errorf("envelope %q → %q, want mobile@contoso.com → [anna@contoso.com]", got.From, got.To)
	}
	if h := got.Header.Get("To"); h != "<anna@contoso.com>" {
		t.Errorf("To header = %q", h)
	}
	if got.Subject != want.Subject || got.Subject != "Enroll your iPhone15C2 or it will lose access to work email" {
		t.Errorf("Subject = %q, rendered %q", got.Subject, want.Subject)
	}
	if got.Text != want.Text {
		t.Errorf("Text differs from Render:\n%s\n---\n%s", got.Text, want.Text)
	}
	if got.HTML != want.HTML {
		t.Errorf("HTML differs from Render")
	}
	if !strings.Contains(got.Text, "  "+renderedURL+"\n") {
		t.Errorf("Text lacks the rendered enrollment link %s:\n%s", renderedURL, got.Text)
	}
	if !strings.Contains(got.HTML, `href="`+strings.ReplaceAll(renderedURL, "&", "&amp;")+`"`) {
		t.Errorf("HTML lacks the rendered enrollment link:\n%s", got.HTML)
	}
	for _, h := range []string{"Date", "Message-Id", "Auto-Submitted", "X-Auto-Response-Suppress"} {
		if got.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	if ua := got.Header.Get("X-Mailer"); ua != "easgate" {
		t.Errorf("X-Mailer = %q, want easgate", ua)
	}
	if got.ParseError != "" {
		t.Errorf("sink could not parse the mail: %s", got.ParseError)
	}
}

func TestSendWithStartTLSAndAuth(t *testing.T) {
	tlsOpts, roots, _ := tlsFixture(t)
	tests := []struct {
		name  string
		mechs []string
	}{
		{name: "plain", mechs: []string{smtpsink.MechPlain}},
		{name: "login, as Exchange offers", mechs: []string{smtpsink.MechLogin}},
		{name: "both offered", mechs: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tlsOpts
			opts.RequireTLS, opts.Username, opts.Password, opts.Mechanisms = true, testUser, testPassword, tt.mechs
			s := startSink(t, opts)
			cfg := config(s)
			cfg.StartTLS, cfg.RootCAs, cfg.Username, cfg.Password = true, roots, testUser, testPassword
			if err := newMailer(t, cfg).Send(context.Background(), notification()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := onlyMessage(t, s)
			if !got.TLS || got.User != testUser {
				t.Errorf("TLS=%v User=%q, want a TLS session authenticated as %s", got.TLS, got.User, testUser)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	tlsOpts, roots, otherRoots := tlsFixture(t)
	authOpts := tlsOpts
	authOpts.Username, authOpts.Password = testUser, testPassword
	withAuth := func(c *Config) {
		c.StartTLS, c.RootCAs, c.Username, c.Password = true, roots, testUser, testPassword
	}
	tests := []struct {
		name      string
		sink      smtpsink.Options
		fault     func(*smtpsink.Sink)
		cfg       func(*Config)
		ctx       func() (context.Context, context.CancelFunc)
		n         func(*engine.Notification)
		transient bool
		code      int
		contains  string
		wantAs    error
	}{
		{
			name: "wrong password", sink: authOpts,
			cfg:      func(c *Config) { withAuth(c); c.Password = "wrong-" + testPassword },
			code:     535,
			contains: "535",
		},
		{
			name:      "sink down",
			fault:     func(s *smtpsink.Sink) { _ = s.SetDown(true) },
			transient: true,
			contains:  "connection refused",
		},
		{
			name:     "recipient rejected",
			fault:    func(s *smtpsink.Sink) { s.RejectRecipient("anna@contoso.com") },
			code:     550,
			contains: "550",
		},
		{
			name:      "recipient deferred",
			fault:     func(s *smtpsink.Sink) { s.DeferRecipient("anna@contoso.com") },
			transient: true,
			code:      451,
			contains:  "451",
		},
		{
			name: "certificate from an untrusted authority", sink: authOpts,
			cfg:      func(c *Config) { withAuth(c); c.RootCAs = otherRoots },
			contains: "certificate",
		},
		{
			name:     "starttls required but not offered",
			cfg:      func(c *Config) { c.StartTLS, c.RootCAs = true, roots },
			contains: "STARTTLS",
		},
		{
			name:      "server too slow",
			fault:     func(s *smtpsink.Sink) { s.SetDelay(5 * time.Second) },
			cfg:       func(c *Config) { c.Timeout = 200 * time.Millisecond },
			transient: true,
			wantAs:    context.DeadlineExceeded,
		},
		{
			name: "caller cancelled",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			transient: true,
			wantAs:    context.Canceled,
		},
		{
			name:   "recipient with a smuggled header",
			n:      func(n *engine.Notification) { n.To = "anna@contoso.com\r\nBcc: evil@example.net" },
			wantAs: ErrRecipient,
		},
		{
			name:   "two recipients",
			n:      func(n *engine.Notification) { n.To = "anna@contoso.com, evil@example.net" },
			wantAs: ErrRecipient,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t, tt.sink)
			cfg := config(s)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			m := newMailer(t, cfg)
			if tt.fault != nil {
				tt.fault(s)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			n := notification()
			if tt.n != nil {
				tt.n(&n)
			}
			err := m.Send(ctx, n)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			var se *SendError
			if !errors.As(err, &se) {
				t.Fatalf("err %T is not a *SendError: %v", err, err)
			}
			if se.Transient() != tt.transient || errors.Is(err, ErrTransient) != tt.transient || errors.Is(err, ErrPermanent) == tt.transient {
				t.Errorf("transient = %v, want %v: %v", se.Transient(), tt.transient, err)
			}
			if se.Code != tt.code {
				t.Errorf("Code = %d, want %d: %v", se.Code, tt.code, err)
			}
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q lacks %q", err, tt.contains)
			}
			if tt.wantAs != nil && !errors.Is(err, tt.wantAs) {
				t.Errorf("error %v is not %v", err, tt.wantAs)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error reveals the password: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if msgs := s.Messages(); len(msgs) != 0 {
				t.Errorf("sink accepted %d messages", len(msgs))
			}
		})
	}
}

func TestSendRecoversWhenSinkComesBack(t *testing.T) {
	s := startSink(t, smtpsink.Options{})
	cfg := config(s)
	obs := &callLog{}
	cfg.Observer = obs
	m := newMailer(t, cfg)
	defer func() {
		// The observer saw the failed delivery and the one that went through.
		if want := []string{"smtp/send ok=false", "smtp/send ok=true"}; !slices.Equal(obs.calls, want) {
			t.Errorf("observed %q, want %q", obs.calls, want)
		}
	}()
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), notification()); !errors.Is(err, ErrTransient) {
		t.Fatalf("Send while down = %v, want transient", err)
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), notification()); err != nil {
		t.Fatalf("Send after recovery: %v", err)
	}
	onlyMessage(t, s)
}

func TestHeaderInjectionThroughDeviceFields(t *testing.T) {
	s := startSink(t, smtpsink.Options{})
	m := newMailer(t, config(s))
	n := notification()
	n.DeviceModel = "X\r\nBcc: evil@x"
	n.DeviceType = "iPhone\nX-Evil: 1"
	n.DeviceOS = "iOS\r\n\r\n<html>body takeover"
	if err := m.Send(context.Background(), n); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := onlyMessage(t, s)
	for _, h := range []string{"Bcc", "X-Evil"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("header %s was injected: %q", h, v)
		}
	}
	if len(got.To) != 1 || got.To[0] != "anna@contoso.com" {
		t.Errorf("envelope recipients = %q, want only anna", got.To)
	}
	if got.Subject != "Enroll your X Bcc: evil@x or it will lose access to work email" {
		t.Errorf("Subject = %q, want the model on one line", got.Subject)
	}
	if strings.Contains(string(got.Raw), "\nBcc:") || strings.Contains(string(got.Raw), "\nX-Evil:") {
		t.Errorf("raw message holds an injected header line:\n%s", got.Raw)
	}
}

func TestCustomTemplateIsUsed(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		subject  string
		text     string
		wantHTML string
	}{
		{
			name:    "text only",
			file:    "testdata/custom.tmpl",
			subject: "Contoso IT: iPhone15C2 needs enrollment",
			text:    "your iPhone15C2 (ApplF17XK2L9Q4MN) must be enrolled: " + renderedURL,
		},
		{
			name:     "text and html",
			file:     "testdata/custom-html.tmpl",
			subject:  "Contoso IT: iPhone15C2 needs enrollment",
			text:     "Enroll iPhone15C2: " + renderedURL,
			wantHTML: `<p class="contoso">Enroll <b>iPhone15C2</b>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSink(t, smtpsink.Options{})
			cfg := config(s)
			cfg.TemplateFile = tt.file
			if err := newMailer(t, cfg).Send(context.Background(), notification()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := onlyMessage(t, s)
			if got.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", got.Subject, tt.subject)
			}
			if !strings.Contains(got.Text, tt.text) {
				t.Errorf("Text lacks %q:\n%s", tt.text, got.Text)
			}
			if (tt.wantHTML == "") != (got.HTML == "") || !strings.Contains(got.HTML, tt.wantHTML) {
				t.Errorf("HTML = %q, want %q", got.HTML, tt.wantHTML)
			}
		})
	}
}

func TestSendConcurrently(t *testing.T) {
	s := startSink(t, smtpsink.Options{})
	m := newMailer(t, config(s))
	const users = 20
	errs := make(chan error, users)
	for i := range users {
		go func() {
			n := notification()
			n.To = "user" + strconv.Itoa(i) + "@contoso.com"
			errs <- m.Send(context.Background(), n)
		}()
	}
	for range users {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	got := map[string]bool{}
	for _, msg := range s.Messages() {
		got[msg.To[0]] = true
	}
	if len(got) != users {
		t.Errorf("sink holds mail for %d distinct users, want %d", len(got), users)
	}
}

type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (c *callLog) ObserveCall(system, op string, _ time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, fmt.Sprintf("%s/%s ok=%v", system, op, err == nil))
}
