package intune

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// MaxPageSize is the largest page of managed devices Graph serves.
const MaxPageSize = 1000

// maxDirectoryPage is the largest page of directory objects Graph serves.
const maxDirectoryPage = 999

// Config says how to reach a tenant's Graph. Both URLs are configuration,
// never constants: sovereign clouds use other hosts.
type Config struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// CertificateFile is a PEM file with the application's certificate
	// and key, for certificate credentials. Not supported yet: New refuses it.
	CertificateFile string
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
	case c.CertificateFile != "" && c.ClientSecret == "":
		return nil, fmt.Errorf("%w: certificate_file is not supported yet; use a client secret", ErrConfig)
	case c.ClientSecret == "":
		return nil, fmt.Errorf("%w: no client secret", ErrConfig)
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
