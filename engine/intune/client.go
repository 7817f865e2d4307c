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
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
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
	logKeyAttempt   = "attempt"
	logKeyPages     = "pages"
	logKeyDevices   = "devices"
	logKeyProblems  = "problems"
	logKeyGroup     = "group"
	logKeyUsers     = "users"
	logKeyQuick     = "quick"
	logKeyIgnored   = "ignored"
	logKeyFilter    = "filter"
	logKeyError     = "error"
)

// Client reads Intune and Entra ID through Microsoft Graph. It is safe for
// concurrent use.
type Client struct {
	cfg     *validated
	log     *slog.Logger
	cred    *azidentity.ClientSecretCredential
	scope   string
	auth    *kiotaazure.AzureIdentityAuthenticationProvider
	adapter *msgraphsdk.GraphRequestAdapter
	graph   *msgraphsdk.GraphServiceClient
	base    *http.Transport
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
	c := &Client{cfg: v, log: log.With(logKeyComponent, "intune")}

	// One TLS-configured transport under both the token requests and the
	// Graph middleware pipeline.
	c.base = http.DefaultTransport.(*http.Transport).Clone()
	c.base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: v.roots}
	c.base.ForceAttemptHTTP2 = true
	c.base.ResponseHeaderTimeout = 60 * time.Second
	c.base.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext

	c.cred, err = azidentity.NewClientSecretCredential(v.TenantID, v.ClientID, v.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: v.authority},
			Transport: &http.Client{Transport: c.base},
			Retry:     policy.RetryOptions{ShouldRetry: retryTokenRequest},
		},
		// Instance discovery would ask login.microsoftonline.com about a
		// custom authority host; the authority is configuration instead.
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: client secret credential for tenant %s: %v", ErrConfig, v.TenantID, err)
	}

	c.scope = v.graph.String() + "/.default"
	// Without the Graph host in the allowed hosts the provider sends
	// requests without a token, silently; the guard transport below turns
	// any such request into ErrNoToken.
	c.auth, err = kiotaazure.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(c.cred, []string{c.scope}, []string{v.graph.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("%w: graph authentication provider: %v", ErrConfig, err)
	}
	opts := msgraphsdk.GetDefaultClientOptions()
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(&guardTransport{next: c.base, c: c}, msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)...),
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
	c.graph = msgraphsdk.NewGraphServiceClient(c.adapter)
	return c, nil
}

// retryTokenRequest is azcore's retry decision for token requests, except
// that a certificate the authority presents and this host does not trust
// fails at once: trying again cannot fix it, and azcore would spend seconds
// backing off.
func retryTokenRequest(resp *http.Response, err error) bool {
	if err != nil {
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		var host x509.HostnameError
		var verify *tls.CertificateVerificationError
		return !errors.As(err, &unknown) && !errors.As(err, &invalid) && !errors.As(err, &host) && !errors.As(err, &verify)
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

// Close releases idle connections.
func (c *Client) Close() { c.base.CloseIdleConnections() }

// Requests returns how many HTTP requests the client has sent to Graph,
// retries included (token requests excluded).
func (c *Client) Requests() int64 { return c.requests.Load() }

// guardTransport sits under the SDK's middleware, next to the wire: it
// refuses a request without an Authorization header and logs each attempt,
// retries included.
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
	start := time.Now()
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		g.c.log.Debug("graph request failed", logKeyMethod, req.Method, logKeyPath, req.URL.Path, logKeyDuration, time.Since(start), logKeyError, err)
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		g.c.log.Warn("graph throttled or unavailable", logKeyMethod, req.Method, logKeyPath, req.URL.Path,
			logKeyStatus, resp.StatusCode, logKeyRetry, resp.Header.Get("Retry-After"), logKeyAttempt, req.Header.Get("Retry-Attempt"))
		// The SDK's retry handler drops this response without closing it;
		// read the small error body now so the connection is not pinned.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
	default:
		g.c.log.Debug("graph request", logKeyMethod, req.Method, logKeyPath, req.URL.Path, logKeyStatus, resp.StatusCode, logKeyDuration, time.Since(start))
	}
	return resp, nil
}

// send runs one request through the SDK's adapter (authentication,
// retries, redirects) and hands a 200 response's body to decode.
func (c *Client) send(ctx context.Context, ri *abs.RequestInformation, decode func(io.Reader) error) error {
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
		return nil, decode(resp.Body)
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
		b.WriteString("; retry after " + e.RetryAfter + "s")
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
