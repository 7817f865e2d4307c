package exchange

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/go-ntlmssp"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// authenticator sends one WinRM request to one server with the configured
// authentication. body is the request's body, which a handshake may send
// more than once.
type authenticator interface {
	roundTrip(req *http.Request, body []byte) (*http.Response, error)
	// closeIdle closes idle connections.
	closeIdle()
}

// newAuthenticator returns the authenticator for cfg.Auth over base, the
// transport every request to the server shares.
func newAuthenticator(cfg Config, base *http.Transport, host string) (authenticator, error) {
	switch cfg.Auth {
	case AuthNTLM:
		user, domain := splitAccount(cfg.Username)
		return &ntlmAuth{base: base, user: user, domain: domain, password: cfg.Password}, nil
	case AuthKerberos:
		return newKerberos(cfg, base, host)
	}
	return &basicAuth{hc: noRedirects(base), user: cfg.Username, password: cfg.Password}, nil
}

func noRedirects(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// withBody returns a copy of req carrying body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r
}

// basicAuth sends the user name and password with every request: only
// ever over HTTPS, unless the admin allowed plain HTTP.
type basicAuth struct {
	hc             *http.Client
	user, password string
}

func (a *basicAuth) roundTrip(req *http.Request, body []byte) (*http.Response, error) {
	r := withBody(req, body)
	r.SetBasicAuth(a.user, a.password)
	return a.hc.Do(r)
}

func (a *basicAuth) closeIdle() { a.hc.CloseIdleConnections() }

// splitAccount splits DOMAIN\user or user@domain.
func splitAccount(account string) (user, domain string) {
	if d, u, ok := strings.Cut(account, `\`); ok {
		return u, d
	}
	if u, d, ok := strings.Cut(account, "@"); ok {
		return u, d
	}
	return account, ""
}

// ntlmAuth authenticates with NTLMv2 (go-ntlmssp's messages) inside the
// Negotiate scheme. Windows binds an NTLM logon to the TCP connection it
// happened on, and the three legs of the handshake must share one; so
// every request goes over a lane, a transport of exactly one connection,
// taken from a pool for the whole request. A lane whose connection
// authenticated sends later requests without a new handshake.
type ntlmAuth struct {
	base                   *http.Transport
	user, domain, password string

	mu   sync.Mutex
	idle []*ntlmLane
}

type ntlmLane struct {
	tr     *http.Transport
	authed bool
}

// maxIdleLanes bounds the lanes kept for reuse: two per PowerShell process
// (a receive and a send can be in flight together), and a few more.
const maxIdleLanes = 2*MaxParallel + 4

func (a *ntlmAuth) get() *ntlmLane {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.idle); n > 0 {
		l := a.idle[n-1]
		a.idle = a.idle[:n-1]
		return l
	}
	tr := a.base.Clone()
	tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = 1, 1
	return &ntlmLane{tr: tr}
}

func (a *ntlmAuth) put(l *ntlmLane) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.idle) >= maxIdleLanes {
		l.tr.CloseIdleConnections()
		return
	}
	a.idle = append(a.idle, l)
}

func (a *ntlmAuth) closeIdle() {
	a.mu.Lock()
	idle := a.idle
	a.idle = nil
	a.mu.Unlock()
	for _, l := range idle {
		l.tr.CloseIdleConnections()
	}
}

func (a *ntlmAuth) roundTrip(req *http.Request, body []byte) (*http.Response, error) {
	l := a.get()
	resp, err := a.send(l, req, body)
	if err != nil {
		l.tr.CloseIdleConnections()
		return nil, err
	}
	var once sync.Once
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { once.Do(func() { a.put(l) }) }}
	return resp, nil
}

// send sends the request on the lane, authenticating its connection first
// unless it already is.
func (a *ntlmAuth) send(l *ntlmLane, req *http.Request, body []byte) (*http.Response, error) {
	leg := func(authz string) (*http.Response, error) {
		r := withBody(req, body)
		r.Header.Del("Authorization")
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		return l.tr.RoundTrip(r)
	}
	if l.authed {
		resp, err := leg("")
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		discard(resp) // the connection was replaced, or the logon expired
		l.authed = false
	}
	negotiate, err := ntlmssp.NewNegotiateMessage(a.domain, "")
	if err != nil {
		return nil, fmt.Errorf("ntlm negotiate message: %w", err)
	}
	resp, err := leg("Negotiate " + base64.StdEncoding.EncodeToString(negotiate))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	scheme, challenge := ntlmChallenge(resp.Header.Values("WWW-Authenticate"))
	if challenge == nil {
		return resp, nil // a plain 401: the server offers no NTLM, or refused the account
	}
	discard(resp)
	authenticate, err := ntlmssp.ProcessChallenge(challenge, a.user, a.password)
	if err != nil {
		return nil, &connError{kind: ErrServerError, err: fmt.Errorf("unusable NTLM challenge: %w", err)}
	}
	resp, err = leg(scheme + " " + base64.StdEncoding.EncodeToString(authenticate))
	if err == nil && resp.StatusCode != http.StatusUnauthorized {
		l.authed = true
	}
	return resp, err
}

// ntlmChallenge finds the CHALLENGE_MESSAGE in WWW-Authenticate values.
func ntlmChallenge(values []string) (scheme string, msg []byte) {
	for _, v := range values {
		s, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || (!strings.EqualFold(s, "Negotiate") && !strings.EqualFold(s, "NTLM")) {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok))
		if err == nil && bytes.HasPrefix(b, []byte("NTLMSSP\x00")) {
			return s, b
		}
	}
	return "", nil
}

// discard reads and closes a response the client does not use, so its
// connection can carry the next request.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
}

// releasingBody gives the lane back once the answer was read.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// kerberosAuth authenticates with a Kerberos service ticket for
// HTTP/<server> in the Negotiate scheme (gokrb5, the library
// masterzen/winrm's own Kerberos transport uses), logged on once from a
// keytab, a credential cache or the password.
type kerberosAuth struct {
	hc  *http.Client
	cl  *krbclient.Client
	spn string
}

func newKerberos(cfg Config, base *http.Transport, host string) (*kerberosAuth, error) {
	conf, err := krbconfig.Load(cfg.Krb5Conf)
	if err != nil {
		return nil, fmt.Errorf("%w: krb5.conf %s: %v", ErrConfig, cfg.Krb5Conf, err)
	}
	user, realm := splitAccount(cfg.Username)
	if cfg.Realm != "" {
		realm = cfg.Realm
	}
	if realm == "" || !strings.Contains(realm, ".") {
		realm = conf.LibDefaults.DefaultRealm // DOMAIN\user names the NetBIOS domain, not the realm
	}
	if realm == "" {
		return nil, fmt.Errorf("%w: no Kerberos realm: set realm, or default_realm in %s", ErrConfig, cfg.Krb5Conf)
	}
	realm = strings.ToUpper(realm)
	var cl *krbclient.Client
	switch {
	case cfg.Keytab != "":
		kt, err := keytab.Load(cfg.Keytab)
		if err != nil {
			return nil, fmt.Errorf("%w: keytab %s: %v", ErrConfig, cfg.Keytab, err)
		}
		cl = krbclient.NewWithKeytab(user, realm, kt, conf, krbclient.DisablePAFXFAST(true))
	case cfg.CCache != "":
		cc, err := credentials.LoadCCache(cfg.CCache)
		if err != nil {
			return nil, fmt.Errorf("%w: credential cache %s: %v", ErrConfig, cfg.CCache, err)
		}
		if cl, err = krbclient.NewFromCCache(cc, conf, krbclient.DisablePAFXFAST(true)); err != nil {
			return nil, fmt.Errorf("%w: credential cache %s: %v", ErrConfig, cfg.CCache, err)
		}
	default:
		cl = krbclient.NewWithPassword(user, realm, cfg.Password, conf, krbclient.DisablePAFXFAST(true), krbclient.AssumePreAuthentication(true))
	}
	spn := cfg.SPN
	if spn == "" {
		spn = "HTTP/" + host
	}
	return &kerberosAuth{hc: noRedirects(base), cl: cl, spn: spn}, nil
}

func (a *kerberosAuth) roundTrip(req *http.Request, body []byte) (*http.Response, error) {
	r := withBody(req, body)
	if err := spnego.SetSPNEGOHeader(a.cl, r, a.spn); err != nil {
		// No ticket: the KDC is unreachable, or refused the account.
		return nil, fmt.Errorf("%w: kerberos ticket for %s: %v", ErrUnauthorized, a.spn, err)
	}
	return a.hc.Do(r)
}

func (a *kerberosAuth) closeIdle() { a.hc.CloseIdleConnections() }
