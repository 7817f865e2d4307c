package intune

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	kiotaazure "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"easgate/engine"
)

var _ engine.IntuneReader = (*Client)(nil)

// Log attribute keys.
const (
	logKeyComponent = "component"
	logKeyMethod    = "method"
	logKeyPath      = "path"
	logKeyStatus    = "status"
	logKeyDuration  = "duration"
	logKeyRetry     = "retry_after"
	logKeyWait      = "wait"
	logKeyAttempt   = "attempt"
	logKeyPages     = "pages"
	logKeyPage      = "page"
	logKeyDevices   = "devices"
	logKeyProblems  = "problems"
	logKeyGroup     = "group"
	logKeyUsers     = "users"
	logKeyQuick     = "quick"
	logKeyIgnored   = "ignored"
	logKeyFilter    = "filter"
	logKeyError     = "error"
	logKeyCredType  = "credential"
	logKeyThumb     = "thumbprint"
	logKeyExpires   = "expires"
)

// systemGraph is the system name the client reports calls under.
const systemGraph = "graph"

// Client reads Intune and Entra ID through Microsoft Graph. It is safe for
// concurrent use.
type Client struct {
	cfg       *validated
	log       *slog.Logger
	tokens    *tokenSource
	cert      *certificateCredential // nil for a client secret
	scope     string
	tokenOpts policy.TokenRequestOptions
	auth      *kiotaazure.AzureIdentityAuthenticationProvider
	adapter   *msgraphsdk.GraphRequestAdapter
	graph     *msgraphsdk.GraphServiceClient
	base      *http.Transport
	limiter   *limiter
	observer  engine.CallObserver
	// requests counts the HTTP requests sent to Graph, retries included.
	requests atomic.Int64
}

// New builds a client for the tenant. It does not contact Graph; Test does.
// A nil logger discards.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	v, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: v, log: log.With(logKeyComponent, "intune"), observer: v.Observer,
		limiter: newLimiter(v.RateLimit, v.RateWindow)}

	// One TLS-configured transport under both the token requests and the
	// Graph middleware pipeline.
	c.base = http.DefaultTransport.(*http.Transport).Clone()
	c.base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: v.roots}
	c.base.ForceAttemptHTTP2 = true
	c.base.ResponseHeaderTimeout = 60 * time.Second
	c.base.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext

	build, cert, err := newCredentialBuilder(v, &http.Client{Transport: &authorityTransport{next: c.base, c: c}})
	if err != nil {
		return nil, err
	}
	c.cert = cert
	if c.tokens, err = newTokenSource(build); err != nil {
		return nil, fmt.Errorf("%w: credential for tenant %s: %v", ErrConfig, v.TenantID, err)
	}
	if cert != nil {
		d := cert.describe()
		c.log.Info("intune certificate credential", logKeyThumb, d.Thumbprint, logKeyExpires, d.NotAfter)
		if left := time.Until(d.NotAfter); left < 30*24*time.Hour {
			c.log.Warn("intune certificate expires soon", logKeyThumb, d.Thumbprint, logKeyExpires, d.NotAfter)
		}
	}

	c.scope = v.graph.String() + "/.default"
	// The same options as the SDK's authentication provider, so that Test
	// and renewals share its cache entry.
	c.tokenOpts = policy.TokenRequestOptions{Scopes: []string{c.scope}, EnableCAE: true}
	// Without the Graph host in the allowed hosts the provider sends
	// requests without a token, silently; the guard transport below turns
	// any such request into ErrNoToken.
	c.auth, err = kiotaazure.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(c.tokens, []string{c.scope}, []string{v.graph.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("%w: graph authentication provider: %v", ErrConfig, err)
	}
	opts := msgraphsdk.GetDefaultClientOptions()
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(&guardTransport{next: c.base, c: c}, c.middlewares(&opts)...),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // the redirect middleware follows them
		},
	}
	c.adapter, err = msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(c.auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("%w: graph request adapter: %v", ErrConfig, err)
	}
	// Before NewGraphServiceClient, which captures the base URL and would
	// otherwise set graph.microsoft.com's.
	c.adapter.SetBaseUrl(v.graph.String() + "/v1.0")
	sdkGlobals.Lock()
	c.graph = msgraphsdk.NewGraphServiceClient(c.adapter)
	sdkGlobals.Unlock()
	return c, nil
}

// sdkGlobals serialises NewGraphServiceClient, which writes the SDK's
// package-level serializer registries and backing store factory: two
// clients built at once would race.
var sdkGlobals sync.Mutex

// middlewares is the SDK's default pipeline (Graph telemetry, URL
// replacement, redirects, compression, parameter names, user agent,
// headers inspection) with its retry handler replaced by the client's
// request policy, which runs last, next to the wire.
func (c *Client) middlewares(opts *msgraphcore.GraphClientOptions) []khttp.Middleware {
	var out []khttp.Middleware
	for _, m := range msgraphcore.GetDefaultMiddlewaresWithOptions(opts) {
		switch m.(type) {
		case *khttp.RetryHandler, khttp.RetryHandler:
			continue
		}
		out = append(out, m)
	}
	return append(out, &requestPolicy{c: c})
}

// retryTokenRequest is azcore's retry decision for token requests, except
// that a certificate the authority presents and this host does not trust
// fails at once: trying again cannot fix it, and azcore would spend seconds
// backing off.
func retryTokenRequest(resp *http.Response, err error) bool {
	if err != nil {
		return !isTLSVerification(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	if resp == nil {
		return false
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isTLSVerification reports whether err is a certificate the client does
// not trust: a configuration problem no retry fixes.
func isTLSVerification(err error) bool {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify)
}

// Close releases idle connections.
func (c *Client) Close() { c.base.CloseIdleConnections() }

// Requests returns how many HTTP requests the client has sent to Graph,
// retries included (token requests excluded).
func (c *Client) Requests() int64 { return c.requests.Load() }

// Certificate describes the certificate the client authenticates with, or
// returns nil for a client secret.
func (c *Client) Certificate() *Certificate {
	if c.cert == nil {
		return nil
	}
	return c.cert.describe()
}

// observe reports one HTTP request to the observer.
func (c *Client) observe(op string, d time.Duration, err error) {
	if c.observer != nil {
		c.observer.ObserveCall(systemGraph, op, d, err)
	}
}

// authorityTransport carries the token and discovery requests azidentity
// makes, reporting each to the observer.
type authorityTransport struct {
	next http.RoundTripper
	c    *Client
}

func (a *authorityTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := a.next.RoundTrip(req)
	op := authorityOp(req.URL.Path)
	switch {
	case err != nil:
		a.c.observe(op, time.Since(start), err)
	case resp.StatusCode >= 400:
		a.c.observe(op, time.Since(start), &AuthError{Authority: a.c.cfg.authority, Status: resp.StatusCode, err: ErrAuthentication})
	default:
		a.c.observe(op, time.Since(start), nil)
	}
	return resp, err
}

// guardTransport sits under the SDK's middleware, next to the wire: it
// refuses a request without an Authorization header, and counts, observes
// and logs each attempt, retries included.
type guardTransport struct {
	next http.RoundTripper
	c    *Client
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%w (is %s the host of graph_url?)", ErrNoToken, req.URL.Host)
	}
	g.c.requests.Add(1)
	op := graphOp(req.URL.Path)
	start := time.Now()
	resp, err := g.next.RoundTrip(req)
	took := time.Since(start)
	if err != nil {
		g.c.observe(op, took, err)
		g.c.log.Debug("graph request failed", logKeyMethod, req.Method, logKeyPath, req.URL.Path, logKeyDuration, took, logKeyError, err)
		return nil, err
	}
	if resp.StatusCode >= 400 {
		g.c.observe(op, took, &GraphError{Status: resp.StatusCode, Path: req.URL.Path, RetryAfter: resp.Header.Get("Retry-After")})
	} else {
		g.c.observe(op, took, nil)
	}
	g.c.log.Debug("graph request", logKeyMethod, req.Method, logKeyPath, req.URL.Path, logKeyStatus, resp.StatusCode, logKeyDuration, took)
	return resp, nil
}

// maxBodyRetries is how often send repeats a request whose 200 response
// broke off mid-body (a dropped connection): the middleware retries only
// what fails before the body.
const maxBodyRetries = 2

// send runs one request through the SDK's adapter (authentication, the
// request policy, redirects) and hands a 200 response's body to decode,
// which must start from nothing each time: a body that breaks off is
// fetched again.
func (c *Client) send(ctx context.Context, ri *abs.RequestInformation, decode func(io.Reader) error) error {
	for attempt := 0; ; attempt++ {
		err := c.sendOnce(ctx, ri, decode)
		if err == nil || attempt >= maxBodyRetries || ctx.Err() != nil || !isTruncated(err) {
			return err
		}
		c.log.Warn("graph response broke off; reading it again", logKeyAttempt, attempt+1, logKeyError, err)
	}
}

// isTruncated reports whether a decode failed because the body broke off
// (a read error, or JSON that ends mid-value), rather than because it held
// something else than the JSON Graph documents.
func isTruncated(err error) bool {
	var re *bodyReadError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &re)
}

// bodyReadError is a failure to read a response body: a dropped connection
// or a reset HTTP/2 stream.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "read response body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// taggedBody marks its read errors as bodyReadError, so that they are told
// apart from the decoder's own.
type taggedBody struct{ r io.Reader }

func (t taggedBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyReadError{err}
	}
	return n, err
}

func (c *Client) sendOnce(ctx context.Context, ri *abs.RequestInformation, decode func(io.Reader) error) error {
	handler := abs.NewRequestHandlerOption()
	handler.SetResponseHandler(func(response any, _ abs.ErrorMappings) (any, error) {
		resp, ok := response.(*http.Response)
		if !ok || resp == nil {
			return nil, fmt.Errorf("%w: no HTTP response", ErrBadResponse)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, graphErrorFrom(resp)
		}
		return nil, decode(taggedBody{resp.Body})
	})
	ri.AddRequestOptions([]abs.RequestOption{handler})
	_, err := c.adapter.SendPrimitive(ctx, ri, "[]byte", nil)
	if err == nil {
		return nil
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		return authErrorFrom(afe, c.cfg.authority)
	}
	// net/http quotes the whole URL, query and $skiptoken included; the
	// path is enough to say what failed.
	var ue *url.Error
	if errors.As(err, &ue) {
		path := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			path = u.Scheme + "://" + u.Host + u.Path
		}
		return fmt.Errorf("%s %s: %w", ue.Op, path, ue.Err)
	}
	return err
}

// GraphError is an error response from Graph.
type GraphError struct {
	Status     int
	Code       string
	Message    string
	RequestID  string
	RetryAfter string
	Path       string
}

// Error returns the status, Graph's code and message, and its request ID.
func (e *GraphError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph answered %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Path != "" {
		b.WriteString(" (" + e.Path)
		if e.RequestID != "" {
			b.WriteString(", request-id " + e.RequestID)
		}
		b.WriteString(")")
	}
	if e.RetryAfter != "" {
		b.WriteString("; Retry-After " + oneLine(e.RetryAfter, 40))
	}
	return b.String()
}

// Is maps the status to the package's sentinels.
func (e *GraphError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrThrottled:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status >= 500
	}
	return false
}

func graphErrorFrom(resp *http.Response) *GraphError {
	e := &GraphError{
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get("request-id"),
		RetryAfter: resp.Header.Get("Retry-After"),
	}
	if resp.Request != nil && resp.Request.URL != nil {
		e.Path = resp.Request.URL.Path
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &body) == nil {
		e.Code, e.Message = body.Error.Code, oneLine(body.Error.Message, 300)
	}
	if e.Code == "" && e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// AuthError is a failure to get an access token from the authority.
type AuthError struct {
	Authority   string
	Status      int    // 0 when the authority did not answer
	Code        string // OAuth error, e.g. invalid_client
	Description string // AADSTS code and text, without trace IDs
	err         error
}

// Error says what the authority answered, in one line.
func (e *AuthError) Error() string {
	var b strings.Builder
	b.WriteString("get access token from " + e.Authority)
	if e.Status != 0 {
		b.WriteString(": " + strconv.Itoa(e.Status))
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

// Unwrap returns ErrAuthentication and azidentity's error.
func (e *AuthError) Unwrap() []error { return []error{ErrAuthentication, e.err} }

func authErrorFrom(afe *azidentity.AuthenticationFailedError, authority string) *AuthError {
	e := &AuthError{Authority: authority, err: afe}
	resp := afe.RawResponse
	if resp == nil {
		e.Description = oneLine(afe.Error(), 400)
		return e
	}
	e.Status = resp.StatusCode
	var raw []byte
	if resp.Body != nil {
		raw, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body = io.NopCloser(strings.NewReader(string(raw)))
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Code = body.Error
		desc := body.Description
		if i := strings.Index(desc, "Trace ID:"); i >= 0 {
			desc = desc[:i]
		}
		e.Description = oneLine(desc, 400)
	}
	return e
}

// oneLine flattens whitespace and cuts s to at most n bytes, for messages
// that end up in logs and on the console.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}
