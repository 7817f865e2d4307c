package intune

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"time"

	"easgate/engine"
)

// MaxPageSize is the largest page of managed devices Graph serves.
const MaxPageSize = 1000

// maxDirectoryPage is the largest page of directory objects Graph serves.
const maxDirectoryPage = 999

// Defaults of the request policy (see policy.go). Graph documents 2,000
// requests per 20 seconds per application per tenant for Intune; the
// client keeps 10% of that for other users of the same app registration
// (another easgate process, `easgate intune test`, a script).
const (
	DefaultRateLimit      = 1800
	DefaultRateWindow     = 20 * time.Second
	DefaultMaxRetries     = 6
	DefaultMaxRetryWait   = 60 * time.Second
	DefaultRetryBudget    = 3 * time.Minute
	DefaultRetryBaseDelay = time.Second
)

// Config says how to reach a tenant's Graph. Both URLs are configuration,
// never constants: sovereign clouds use other hosts.
type Config struct {
	TenantID string
	ClientID string
	// ClientSecret authenticates the application with a client secret.
	// Exactly one of ClientSecret and CertificateFile is set.
	ClientSecret string
	// CertificateFile is a PEM file (certificate and unencrypted private
	// key) or a PKCS#12 (.pfx) file holding the application's certificate
	// and RSA key, for certificate credentials.
	CertificateFile string
	// CertificatePassword decrypts a PKCS#12 CertificateFile; empty for
	// none. It is a secret.
	CertificatePassword string
	// SendCertificateChain sends the certificate chain (x5c) with each
	// token request, which subject name/issuer authentication needs.
	SendCertificateChain bool
	// GraphURL is Graph's base URL without the version, e.g.
	// https://graph.microsoft.com.
	GraphURL string
	// AuthorityURL is the Entra ID authority host, e.g.
	// https://login.microsoftonline.com.
	AuthorityURL string
	// CAPEM is a PEM bundle of extra trusted roots, added to the system's;
	// nil trusts the system roots only.
	CAPEM []byte
	// PageSize is how many managed devices to ask for per page; zero or
	// more than MaxPageSize means MaxPageSize. Group members are read in
	// pages of at most 999, Graph's directory limit.
	PageSize int

	// Observer is told about every HTTP request to Graph and the
	// authority, retries included; nil reports to nobody.
	Observer engine.CallObserver

	// RateLimit requests at most per RateWindow leave this client (a
	// sliding window); zero means DefaultRateLimit per DefaultRateWindow.
	RateLimit  int
	RateWindow time.Duration
	// MaxRetries is how often one request is retried after a 429, 503,
	// 504 or a network error; zero means DefaultMaxRetries, negative none.
	MaxRetries int
	// MaxRetryWait caps one wait, whatever Retry-After says; zero means
	// DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// RetryBudget caps the total wait of one request's retries; zero means
	// DefaultRetryBudget.
	RetryBudget time.Duration
	// RetryBaseDelay is the first backoff when Graph sends no Retry-After;
	// it doubles per retry, with jitter. Zero means DefaultRetryBaseDelay.
	RetryBaseDelay time.Duration
}

// validated is a Config checked and normalised.
type validated struct {
	Config
	graph     *url.URL
	authority string
	roots     *x509.CertPool
}

func (c Config) validate() (*validated, error) {
	v := &validated{Config: c}
	switch {
	case strings.TrimSpace(c.TenantID) == "":
		return nil, fmt.Errorf("%w: tenant_id is empty", ErrConfig)
	case strings.TrimSpace(c.ClientID) == "":
		return nil, fmt.Errorf("%w: client_id is empty", ErrConfig)
	case c.CertificateFile != "" && c.ClientSecret != "":
		return nil, fmt.Errorf("%w: both a client secret and certificate_file are set; use one credential", ErrConfig)
	case c.CertificateFile == "" && c.ClientSecret == "":
		return nil, fmt.Errorf("%w: no credential: set client_secret_file (or the environment variable) or certificate_file", ErrConfig)
	}
	g, err := httpsBase("graph_url", c.GraphURL)
	if err != nil {
		return nil, err
	}
	v.graph = g
	a, err := httpsBase("authority_url", c.AuthorityURL)
	if err != nil {
		return nil, err
	}
	v.authority = a.String()
	v.roots, err = x509.SystemCertPool()
	if err != nil || v.roots == nil {
		v.roots = x509.NewCertPool()
	}
	if len(c.CAPEM) > 0 && !v.roots.AppendCertsFromPEM(c.CAPEM) {
		return nil, fmt.Errorf("%w: ca_file holds no PEM certificate", ErrConfig)
	}
	if v.PageSize <= 0 || v.PageSize > MaxPageSize {
		v.PageSize = MaxPageSize
	}
	if v.RateLimit <= 0 || v.RateWindow <= 0 {
		v.RateLimit, v.RateWindow = DefaultRateLimit, DefaultRateWindow
	}
	switch {
	case v.MaxRetries == 0:
		v.MaxRetries = DefaultMaxRetries
	case v.MaxRetries < 0:
		v.MaxRetries = 0
	}
	if v.MaxRetryWait <= 0 {
		v.MaxRetryWait = DefaultMaxRetryWait
	}
	if v.RetryBudget <= 0 {
		v.RetryBudget = DefaultRetryBudget
	}
	if v.RetryBaseDelay <= 0 {
		v.RetryBaseDelay = DefaultRetryBaseDelay
	}
	return v, nil
}

// httpsBase parses an https URL that names only a host (and port).
func httpsBase(name, raw string) (*url.URL, error) {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	if raw == "" {
		return nil, fmt.Errorf("%w: %s is empty", ErrConfig, name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrConfig, name, raw, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %s %q: want https://host", ErrConfig, name, raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: %s %q: want only scheme and host, no path or query", ErrConfig, name, raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
