package mailer

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode"

	"easgate/engine"
)

// Defaults for Config fields left zero.
const (
	DefaultSubmissionPort = 587 // with StartTLS
	DefaultRelayPort      = 25  // without
	DefaultTimeout        = 30 * time.Second
)

// Config is the notify section of easgate's configuration (CONTRACTS.md,
// notify.smtp and its siblings), plus what the caller resolves from it:
// the password read from its file or environment, and the CA pool.
type Config struct {
	Host     string // SMTP server name; also the name its certificate must carry
	Port     int    // 0: 587 with StartTLS, else 25
	StartTLS bool   // require STARTTLS; the send fails if the server does not offer it
	// Username enables SMTP AUTH (PLAIN or LOGIN, whichever the server
	// offers; LOGIN is what Exchange offers). It requires StartTLS.
	Username string
	Password string `json:"-"`
	// From is the sender, e.g. "IT <mobile@contoso.com>".
	From string
	// EnrollmentURL is the link users follow to enroll, itself a
	// text/template over Data whose values arrive query-escaped, e.g.
	// "https://portal.manage.microsoft.com/?upn={{.Mailbox}}". Empty means
	// DefaultEnrollmentURL.
	EnrollmentURL string
	// TemplateFile replaces the built-in notification template (see
	// DefaultTemplate); empty means the built-in one.
	TemplateFile string
	// RootCAs verifies the server's certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// InsecureSkipVerify accepts any server certificate. For tests only.
	InsecureSkipVerify bool
	// Timeout bounds one Send: connecting, TLS, AUTH and the transfer.
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// Observer, if set, is told about every delivery (system "smtp", op
	// "send"), for metrics.
	Observer engine.CallObserver
}

// String describes the configuration without its password.
func (c Config) String() string {
	return fmt.Sprintf("smtp://%s:%d starttls=%t user=%q from=%q template=%q",
		c.Host, c.Port, c.StartTLS, c.Username, c.From, c.TemplateFile)
}

// LogValue logs the configuration without its password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host), slog.Int("port", c.Port), slog.Bool("starttls", c.StartTLS),
		slog.String("username", c.Username), slog.String("from", c.From),
		slog.String("template_file", c.TemplateFile), slog.Bool("insecure_skip_verify", c.InsecureSkipVerify),
	)
}

// withDefaults fills the zero fields and checks the rest; errors wrap
// ErrConfig.
func (c Config) withDefaults() (Config, *mail.Address, error) {
	bad := func(format string, args ...any) (Config, *mail.Address, error) {
		return c, nil, fmt.Errorf("notify: %w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	c.Host = strings.TrimSpace(c.Host)
	switch {
	case c.Host == "":
		return bad("smtp host is empty")
	case strings.ContainsFunc(c.Host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/' }):
		return bad("smtp host %q: want a host name or address", c.Host)
	}
	if c.Port == 0 {
		c.Port = DefaultRelayPort
		if c.StartTLS {
			c.Port = DefaultSubmissionPort
		}
	}
	if c.Port < 1 || c.Port > 65535 {
		return bad("smtp port %d: want 1..65535", c.Port)
	}
	if c.Username != "" && !c.StartTLS {
		return bad("smtp username is set without starttls: the password would cross the network in clear text")
	}
	if strings.ContainsFunc(c.Username, unicode.IsControl) {
		return bad("smtp username contains control characters")
	}
	if c.Username == "" && c.Password != "" {
		return bad("smtp password is set without a username")
	}
	if c.Timeout < 0 {
		return bad("send timeout %v is negative", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.EnrollmentURL == "" {
		c.EnrollmentURL = DefaultEnrollmentURL
	}
	if strings.ContainsFunc(c.From, unicode.IsControl) {
		return bad("from %q contains control characters", c.From)
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return bad("from %q: %v", c.From, err)
	}
	return c, from, nil
}
