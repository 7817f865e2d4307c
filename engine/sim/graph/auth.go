package graph

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// graphAppID is Microsoft Graph's well-known application ID, an audience
// Graph accepts besides its URL.
const graphAppID = "00000003-0000-0000-c000-000000000000"

// token is an access token the simulator issued.
type token struct {
	expires  time.Time
	audience string
	roles    []string
}

func (t token) hasAny(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(t.roles, r) {
			return true
		}
	}
	return false
}

// knownTenant reports whether the path's tenant names the org: its ID or
// its domain, any case, as Entra ID accepts either.
func (s *Server) knownTenant(tenant string) (id string, ok bool) {
	s.org.Mu.RLock()
	defer s.org.Mu.RUnlock()
	if strings.EqualFold(tenant, s.org.TenantID) || strings.EqualFold(tenant, s.org.Domain) {
		return s.org.TenantID, true
	}
	return "", false
}

// openIDConfiguration serves /{tenant}/v2.0/.well-known/openid-configuration,
// the tenant discovery document MSAL reads to find the token endpoint. The
// issuer's host must equal the authority's, or MSAL refuses it.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request, c *reqCtx, tenant string) {
	tid, ok := s.knownTenant(tenant)
	if !ok {
		s.oauthError(w, r, c, http.StatusBadRequest, "invalid_tenant", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	base := baseURL(r)
	host := r.Host
	doc := map[string]any{
		"token_endpoint":                        base + "/" + tid + pathToken,
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/" + tid + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/" + tid + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     base + "/oidc/userinfo",
		"authorization_endpoint":                base + "/" + tid + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/" + tid + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/" + tid + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "tid", "roles", "appid"},
		"kerberos_endpoint":                     base + "/" + tid + "/kerberos",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   host,
		"cloud_graph_host_name":                 host,
		"msgraph_host":                          host,
		"rbac_url":                              base,
	}
	body, err := json.Marshal(doc)
	if err != nil {
		s.oauthError(w, r, c, http.StatusInternalServerError, "server_error", 50000, "encode discovery document")
		return
	}
	s.count(func(st *Stats) { st.Discovery++ })
	writeJSON(w, r, http.StatusOK, body)
}

// issueToken serves the client-credentials grant of
// /{tenant}/oauth2/v2.0/token with a client secret or a client assertion
// signed with a registered certificate's key.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, c *reqCtx, tenant string) {
	fail := func(status int, code string, aadsts int, desc string) {
		s.count(func(st *Stats) { st.TokenFailures++ })
		s.oauthError(w, r, c, status, code, aadsts, desc)
	}
	tid, ok := s.knownTenant(tenant)
	if !ok {
		fail(http.StatusBadRequest, "invalid_request", 90002,
			fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		if gt == "" {
			fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
			return
		}
		fail(http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
		return
	}
	clientID := form.Get("client_id")
	if clientID != s.clientID {
		fail(http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tid))
		return
	}
	byCert := false
	switch {
	case form.Get("client_assertion") != "":
		if e := s.verifyAssertion(r, form, tenant, tid); e != nil {
			fail(e.status, e.code, e.aadsts, e.desc)
			return
		}
		byCert = true
	case form.Get("client_secret") == "":
		fail(http.StatusUnauthorized, "invalid_client", 7000216,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	case subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(s.secret)) != 1:
		fail(http.StatusUnauthorized, "invalid_client", 7000215,
			fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.clientID))
		return
	}
	var resource string
	for _, sc := range strings.Fields(form.Get("scope")) {
		switch sc {
		case "openid", "profile", "offline_access":
			continue
		}
		if resource != "" || !strings.HasSuffix(sc, "/.default") {
			fail(http.StatusBadRequest, "invalid_scope", 1002012,
				fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", form.Get("scope")))
			return
		}
		resource = strings.TrimSuffix(sc, "/.default")
	}
	if resource == "" {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
		return
	}

	now := s.now()
	exp := now.Add(s.lifetime)
	access := s.signToken(baseURL(r), tid, resource, now, exp)
	s.mu.Lock()
	for k, t := range s.tokens {
		if now.After(t.expires.Add(time.Hour)) {
			delete(s.tokens, k)
		}
	}
	s.tokens[access] = token{expires: exp, audience: resource, roles: slices.Clone(s.roles)}
	s.stats.Tokens++
	if byCert {
		s.stats.CertificateTokens++
	}
	s.mu.Unlock()

	secs := int(s.lifetime / time.Second)
	var j jw
	j.raw(`{"token_type":"Bearer","expires_in":`)
	j.int(int64(secs))
	j.raw(`,"ext_expires_in":`)
	j.int(int64(secs))
	j.raw(`,"access_token":`)
	j.str(access)
	j.raw(`}`)
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(j.b)
}

// signToken makes a JWT-shaped access token, HMAC-signed with a key only
// the simulator holds. Clients must treat it as opaque; easgate's Test reads
// its roles claim the way it would read Entra ID's.
func (s *Server) signToken(issuerBase, tid, aud string, now, exp time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`))
	claims, _ := json.Marshal(map[string]any{
		"aud":   aud,
		"iss":   issuerBase + "/" + tid + "/",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   exp.Unix(),
		"appid": s.clientID,
		"tid":   tid,
		"roles": s.roles,
		"uti":   enc.EncodeToString(randomBytes(12)),
		"ver":   "1.0",
	})
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, s.signKey)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// authenticate checks the request's bearer token and answers 401 as Graph
// does when it is missing, unknown, expired or for another audience.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, c *reqCtx) (token, bool) {
	deny := func(msg string) (token, bool) {
		s.count(func(st *Stats) { st.Unauthorized++ })
		s.graphError(w, r, c, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return token{}, false
	}
	h := r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(h, " ")
	raw = strings.TrimSpace(raw)
	if h == "" || raw == "" {
		return deny("Access token is empty.")
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return deny("Access token validation failure. Invalid authorization scheme.")
	}
	s.mu.Lock()
	t, ok := s.tokens[raw]
	s.mu.Unlock()
	if !ok {
		return deny("Access token validation failure. Invalid signature.")
	}
	if !s.now().Before(t.expires) {
		return deny("Lifetime validation failed, the token is expired.")
	}
	switch t.audience {
	case baseURL(r), "https://graph.microsoft.com", graphAppID:
	default:
		return deny("Access token validation failure. Invalid audience.")
	}
	return t, true
}

// oauthError writes Entra ID's token endpoint error body.
func (s *Server) oauthError(w http.ResponseWriter, r *http.Request, c *reqCtx, status int, code string, aadsts int, desc string) {
	now := s.now().UTC()
	body, _ := json.Marshal(map[string]any{
		"error": code,
		"error_description": "AADSTS" + strconv.Itoa(aadsts) + ": " + desc +
			" Trace ID: " + c.requestID + " Correlation ID: " + c.clientRequestID + " Timestamp: " + now.Format("2006-01-02 15:04:05Z"),
		"error_codes":    []int{aadsts},
		"timestamp":      now.Format("2006-01-02 15:04:05Z"),
		"trace_id":       c.requestID,
		"correlation_id": c.clientRequestID,
		"error_uri":      baseURL(r) + "/error?code=" + strconv.Itoa(aadsts),
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
