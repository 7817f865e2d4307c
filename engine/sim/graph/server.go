package graph

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"easgate/engine/sim/org"
	"easgate/engine/sim/simtls"
)

// Paths the simulator serves (tenant-relative ones are under /{tenant}).
const (
	PathManagedDevices = "/v1.0/deviceManagement/managedDevices"
	pathGroupsPrefix   = "/v1.0/groups/"
	pathUserCast       = "/transitiveMembers/microsoft.graph.user"
	pathUserCastShort  = "/transitiveMembers/graph.user" // the SDK's spelling; Graph accepts both
	pathOIDC           = "/v2.0/.well-known/openid-configuration"
	pathToken          = "/oauth2/v2.0/token"
)

// App roles (application permissions) the simulator knows.
const (
	RoleManagedDevicesRead      = "DeviceManagementManagedDevices.Read.All"
	RoleManagedDevicesReadWrite = "DeviceManagementManagedDevices.ReadWrite.All"
	RoleGroupMemberRead         = "GroupMember.Read.All"
	RoleGroupRead               = "Group.Read.All"
	RoleDirectoryRead           = "Directory.Read.All"
)

// DefaultClientID is the application (client) ID the simulator accepts
// unless Options names another.
const DefaultClientID = "9c2d7f4e-5b1a-4e3c-8f6d-2a7b1c0e4d51"

// Log attribute keys.
const (
	logKeyMethod   = "method"
	logKeyPath     = "path"
	logKeyQuery    = "query"
	logKeyStatus   = "status"
	logKeyDuration = "duration"
	logKeyAddr     = "addr"
	logKeyError    = "error"
)

// Options configure a simulator.
type Options struct {
	// ClientID is the application ID the token endpoint accepts;
	// DefaultClientID when empty.
	ClientID string
	// ClientSecret is the client secret the token endpoint accepts; a random
	// one when empty (read it back with ClientSecret).
	ClientSecret string
	// TokenLifetime is how long issued access tokens last (expires_in);
	// an hour when zero, as Entra ID's default.
	TokenLifetime time.Duration
	// Roles are the application permissions granted to the client; nil
	// grants DeviceManagementManagedDevices.Read.All and GroupMember.Read.All.
	Roles []string
	// Now is the simulator's clock; time.Now when nil. Tests move it to
	// expire tokens.
	Now func() time.Time
	// Log receives one debug record per request; discarded when nil.
	Log *slog.Logger
	// IgnoreFilters serves every $filter as unsupported, returning
	// everything, as Graph does for a filter it does not know: clients
	// must not rely on a filter for correctness.
	IgnoreFilters bool
	// ClientCertificates are the certificates registered for the
	// application: a client assertion signed by one of their keys
	// authenticates it (certificate credentials). More can be added with
	// AddClientCertificate.
	ClientCertificates []*x509.Certificate
	// CostScale turns on the cost model (cost.go): every response is held
	// back for the latency a real tenant would take, times CostScale (1 is
	// real time, 0.01 a hundred times faster). Zero, the default, serves
	// at once.
	CostScale float64
}

// Fault makes matching requests fail with Status (and Retry-After) instead
// of being served, as Graph's throttling and outages do; or be slow
// (Delay); or find their token expired (ExpireTokens).
type Fault struct {
	// Path is the request path to fail, e.g. PathManagedDevices or
	// TokenPath(); empty matches every Graph request.
	Path string
	// Page is the 1-based page of a paged list to fail (1 is the request
	// without $skiptoken); 0 matches every page.
	Page int
	// Status is the HTTP status to answer, e.g. 429 or 503, or
	// StatusTruncated; 0 answers normally (after Delay, ExpireTokens).
	Status int
	// RetryAfter is the Retry-After header to send ("2", "0.5"); empty
	// sends none.
	RetryAfter string
	// Times is how many matching requests fail before the fault clears;
	// 0 fails every one until ClearFaults.
	Times int
	// Delay holds the request this long (or until the client gives up)
	// before it is answered: a slow page. With Status 0 it is then served.
	Delay time.Duration
	// ExpireTokens expires every access token issued so far before the
	// request is authenticated, as Graph does when its clock passes a
	// token's expiry while the client's cache still holds it. With Status
	// 0 the request then meets Graph's 401.
	ExpireTokens bool
}

// Stats count what the simulator has served.
type Stats struct {
	Requests      int            // every HTTP request
	Discovery     int            // OpenID configuration documents served
	Tokens        int            // access tokens issued
	TokenFailures int            // token requests refused
	Graph         int            // Graph requests served with 200
	Unauthorized  int            // Graph requests refused with 401 (missing, unknown, expired token)
	Forbidden     int            // Graph requests refused with 403 (missing app role)
	Faults        int            // requests an injected Fault matched
	ByPath        map[string]int // Graph requests served with 200, by path
	// Pages is how many collection pages were served (managed devices and
	// group members), Objects how many items they held.
	Pages   int
	Objects int
	// CertificateTokens counts the tokens issued for a client assertion
	// (certificate credential), included in Tokens.
	CertificateTokens int
	// AlteredLinks counts paged requests whose URL was not exactly a
	// nextLink the simulator handed out.
	AlteredLinks int
}

// Server is a simulated Entra ID and Microsoft Graph over one organisation.
// It is an http.Handler; Start serves it over HTTPS.
type Server struct {
	org      *org.Org
	clientID string
	secret   string
	lifetime time.Duration
	roles    []string
	now      func() time.Time
	log      *slog.Logger
	signKey  []byte
	noFilter bool
	cost     float64

	mu       sync.Mutex
	linkBase string
	certs    []*x509.Certificate
	links    map[string]struct{} // nextLinks handed out
	tokens   map[string]token
	faults   []*Fault
	stats    Stats

	srv *http.Server
	url string
}

// New returns a simulator over o. The org is read under o.Mu.
func New(o *org.Org, opt Options) *Server {
	s := &Server{
		org:      o,
		clientID: opt.ClientID,
		secret:   opt.ClientSecret,
		lifetime: opt.TokenLifetime,
		roles:    opt.Roles,
		now:      opt.Now,
		log:      opt.Log,
		signKey:  randomBytes(32),
		noFilter: opt.IgnoreFilters,
		cost:     opt.CostScale,
		certs:    slices.Clone(opt.ClientCertificates),
		links:    map[string]struct{}{},
		tokens:   map[string]token{},
		stats:    Stats{ByPath: map[string]int{}},
	}
	if s.clientID == "" {
		s.clientID = DefaultClientID
	}
	if s.secret == "" {
		s.secret = "sim~" + hex.EncodeToString(randomBytes(16))
	}
	if s.lifetime <= 0 {
		s.lifetime = time.Hour
	}
	if s.roles == nil {
		s.roles = []string{RoleManagedDevicesRead, RoleGroupMemberRead}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// randomBytes returns n random bytes; crypto/rand does not fail on the
// platforms Go supports.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// ClientID returns the application ID the token endpoint accepts.
func (s *Server) ClientID() string { return s.clientID }

// ClientSecret returns the client secret the token endpoint accepts.
func (s *Server) ClientSecret() string { return s.secret }

// AddClientCertificate registers a certificate for the application, as an
// admin uploads one to the app registration.
func (s *Server) AddClientCertificate(cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs = append(s.certs, cert)
}

// TokenPath returns the token endpoint's path for the simulated tenant, for
// a Fault on token requests.
func (s *Server) TokenPath() string { return "/" + s.TenantID() + pathToken }

// ExpireTokens makes every access token issued so far expired, as if
// Graph's clock had passed them.
func (s *Server) ExpireTokens() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tokens {
		if t.expires.After(now) {
			t.expires = now
			s.tokens[k] = t
		}
	}
}

// TenantID returns the simulated tenant's ID.
func (s *Server) TenantID() string {
	s.org.Mu.RLock()
	defer s.org.Mu.RUnlock()
	return s.org.TenantID
}

// Start serves the simulator over HTTPS on addr (e.g. "127.0.0.1:0") with
// the CA's loopback certificate and returns its base URL, which is both the
// Graph URL and the authority URL.
func (s *Server) Start(addr string, ca *simtls.CA) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s,
		TLSConfig:         ca.ServerTLS(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.srv = srv
	s.url = "https://" + l.Addr().String()
	s.mu.Unlock()
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("graph simulator stopped", logKeyAddr, l.Addr().String(), logKeyError, err)
		}
	}()
	return s.URL(), nil
}

// URL returns the base URL Start serves on, or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops serving and drops open connections.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Shutdown stops serving after in-flight requests finish or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// AddFault installs a fault; faults are checked in the order added.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// SetLinkBase makes every @odata.nextLink start with base (e.g.
// "https://localhost:PORT") instead of the scheme and host the client used:
// a link to a host outside the client's Graph URL, which must not receive
// its token. An empty base restores the default.
func (s *Server) SetLinkBase(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkBase = strings.TrimRight(base, "/")
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByPath = make(map[string]int, len(s.stats.ByPath))
	for k, v := range s.stats.ByPath {
		st.ByPath[k] = v
	}
	return st
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{ByPath: map[string]int{}}
}

func (s *Server) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// fault returns the first installed fault matching the request, consuming
// one of its Times.
func (s *Server) fault(path string, page int) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Path != "" && f.Path != path {
			continue
		}
		if f.Path == "" && !strings.HasPrefix(path, "/v1.0/") {
			continue
		}
		if f.Page != 0 && f.Page != page {
			continue
		}
		hit := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		s.stats.Faults++
		return &hit
	}
	return nil
}

// statusRecorder remembers the status a handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// ServeHTTP routes a request to the authority or Graph endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.count(func(st *Stats) { st.Requests++ })

	reqID := newGUID()
	rec.Header().Set("request-id", reqID)
	clientReqID := r.Header.Get("client-request-id")
	if clientReqID == "" {
		clientReqID = reqID
	}
	rec.Header().Set("client-request-id", clientReqID)
	ctx := &reqCtx{requestID: reqID, clientRequestID: clientReqID}

	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			s.graphError(rec, r, ctx, http.StatusBadRequest, "BadRequest", "The request body is not valid gzip.")
			return
		}
		defer zr.Close()
		r.Body = io.NopCloser(zr)
		r.Header.Del("Content-Encoding")
	}

	s.route(rec, r, ctx)
	s.log.Debug("graph simulator request",
		logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyQuery, r.URL.RawQuery, logKeyStatus, rec.status, logKeyDuration, time.Since(start))
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	p := r.URL.Path
	switch {
	case p == PathManagedDevices:
		if !s.allowMethod(w, r, c, http.MethodGet) {
			return
		}
		s.graph(w, r, c, []string{RoleManagedDevicesRead, RoleManagedDevicesReadWrite}, s.managedDevices)
	case strings.HasPrefix(p, pathGroupsPrefix) && (strings.HasSuffix(p, pathUserCast) || strings.HasSuffix(p, pathUserCastShort)):
		id := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(p, pathGroupsPrefix), pathUserCast), pathUserCastShort)
		if id == "" || strings.Contains(id, "/") {
			s.graphError(w, r, c, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", id))
			return
		}
		if !s.allowMethod(w, r, c, http.MethodGet) {
			return
		}
		s.graph(w, r, c, []string{RoleGroupMemberRead, RoleGroupRead, RoleDirectoryRead}, func(w http.ResponseWriter, r *http.Request, c *reqCtx, cur cursor) {
			s.groupUsers(w, r, c, id, cur)
		})
	case strings.HasPrefix(p, "/v1.0/") || strings.HasPrefix(p, "/beta/"):
		seg := strings.SplitN(strings.TrimPrefix(strings.TrimPrefix(p, "/v1.0/"), "/beta/"), "/", 2)[0]
		s.graphError(w, r, c, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg))
	case strings.HasSuffix(p, pathOIDC) && strings.Count(p, "/") == 4:
		if !s.allowMethod(w, r, c, http.MethodGet) {
			return
		}
		if !s.pay(r, CostDiscovery) {
			return
		}
		s.openIDConfiguration(w, r, c, strings.TrimSuffix(strings.TrimPrefix(p, "/"), pathOIDC))
	case strings.HasSuffix(p, pathToken) && strings.Count(p, "/") == 4:
		if !s.allowMethod(w, r, c, http.MethodPost) {
			return
		}
		if f := s.fault(p, 1); f != nil {
			if !s.delay(r, f.Delay) {
				return
			}
			if f.Status != 0 {
				s.count(func(st *Stats) { st.TokenFailures++ })
				writeFault(w, f)
				s.oauthError(w, r, c, f.Status, "temporarily_unavailable", 50196, "The server is temporarily unavailable.")
				return
			}
		}
		if !s.pay(r, CostToken) {
			return
		}
		s.issueToken(w, r, c, strings.TrimSuffix(strings.TrimPrefix(p, "/"), pathToken))
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) allowMethod(w http.ResponseWriter, r *http.Request, c *reqCtx, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	s.graphError(w, r, c, http.StatusMethodNotAllowed, "Request_BadRequest", fmt.Sprintf("The HTTP method '%s' is not supported for this resource.", r.Method))
	return false
}

// graph authenticates a Graph request, checks the app's roles, applies
// faults, and then serves it.
func (s *Server) graph(w http.ResponseWriter, r *http.Request, c *reqCtx, anyRole []string, serve func(http.ResponseWriter, *http.Request, *reqCtx, cursor)) {
	f := s.fault(r.URL.Path, pageNumber(r))
	if f != nil {
		if !s.delay(r, f.Delay) {
			return
		}
		if f.ExpireTokens {
			s.ExpireTokens()
		}
	}
	tok, ok := s.authenticate(w, r, c)
	if !ok {
		return
	}
	if !tok.hasAny(anyRole) {
		s.count(func(st *Stats) { st.Forbidden++ })
		if r.URL.Path == PathManagedDevices {
			s.graphError(w, r, c, http.StatusForbidden, "Forbidden",
				"Application is not authorized to perform this operation. Application must have one of the following scopes: "+strings.Join(anyRole, ", "))
		} else {
			s.graphError(w, r, c, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		}
		return
	}
	cur, ok := s.pageOf(w, r, c)
	if !ok {
		return
	}
	s.checkLink(r)
	if f != nil && f.Status == StatusTruncated {
		truncate(w, r, c, cur, serve)
		return
	}
	if f != nil && f.Status != 0 {
		writeFault(w, f)
		code, msg := "generalException", "An error has occurred."
		switch f.Status {
		case http.StatusTooManyRequests:
			code, msg = "TooManyRequests", "Too many requests. Please retry again later."
		case http.StatusServiceUnavailable:
			code, msg = "serviceNotAvailable", "The service is temporarily unavailable. Please retry after a delay."
		case http.StatusGatewayTimeout:
			code, msg = "gatewayTimeout", "The gateway did not receive a timely response."
		}
		s.graphError(w, r, c, f.Status, code, msg)
		return
	}
	serve(w, r, c, cur)
}

// StatusTruncated, as a Fault's Status, serves the response but breaks it
// off halfway through the body, as a dropped connection does: the client
// sees 200 and then a read error.
const StatusTruncated = -1

// truncate serves a request into a buffer, sends the headers and half the
// body, and aborts the response (the connection is closed, or the HTTP/2
// stream reset).
func truncate(w http.ResponseWriter, r *http.Request, c *reqCtx, cur cursor, serve func(http.ResponseWriter, *http.Request, *reqCtx, cursor)) {
	buf := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	serve(buf, r, c, cur)
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	body := buf.body.Bytes()
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(buf.status)
	_, _ = w.Write(body[:len(body)/2])
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	panic(http.ErrAbortHandler)
}

// bufferedResponse is a ResponseWriter that keeps what it is given.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

// delay holds a request for d, and reports false when the client went
// away meanwhile.
func (s *Server) delay(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

func writeFault(w http.ResponseWriter, f *Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
}

// reqCtx carries a request's IDs into error bodies.
type reqCtx struct {
	requestID       string
	clientRequestID string
}

// graphError writes Graph's error body:
// {"error":{"code":…,"message":…,"innerError":{date, request-id, client-request-id}}}.
func (s *Server) graphError(w http.ResponseWriter, r *http.Request, c *reqCtx, status int, code, message string) {
	var j jw
	j.raw(`{"error":{"code":`)
	j.str(code)
	j.raw(`,"message":`)
	j.str(message)
	j.raw(`,"innerError":{"date":`)
	j.str(s.now().UTC().Format("2006-01-02T15:04:05"))
	j.raw(`,"request-id":`)
	j.str(c.requestID)
	j.raw(`,"client-request-id":`)
	j.str(c.clientRequestID)
	j.raw(`}}}`)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="`+baseURL(r)+`/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	writeJSON(w, r, status, j.b)
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// baseURL is the scheme and host the client used, from which Graph builds
// @odata.nextLink and @odata.context.
func baseURL(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

func newGUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
