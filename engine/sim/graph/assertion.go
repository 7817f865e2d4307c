package graph

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ClientAssertionType is the only client_assertion_type Entra ID accepts.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionSkew is how far an assertion's nbf and exp may be off the
// simulator's clock, as Entra ID allows for clock skew.
const assertionSkew = 5 * time.Minute

// oauthFailure is a token endpoint error to answer.
type oauthFailure struct {
	status int
	code   string
	aadsts int
	desc   string
}

func invalidClient(aadsts int, format string, args ...any) *oauthFailure {
	return &oauthFailure{status: http.StatusUnauthorized, code: "invalid_client", aadsts: aadsts, desc: fmt.Sprintf(format, args...)}
}

// assertionHeader is a client assertion's JOSE header. MSAL writes the
// thumbprints with standard base64; others use base64url; both are read.
type assertionHeader struct {
	Alg     string   `json:"alg"`
	Typ     string   `json:"typ"`
	X5t     string   `json:"x5t"`
	X5tS256 string   `json:"x5t#S256"`
	X5c     []string `json:"x5c"`
	Kid     string   `json:"kid"`
}

type assertionClaims struct {
	Aud json.RawMessage `json:"aud"`
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Jti string          `json:"jti"`
	Exp json.Number     `json:"exp"`
	Nbf json.Number     `json:"nbf"`
}

// verifyAssertion checks a client assertion the way Entra ID does for a
// certificate credential: a JWT whose header names a registered
// certificate by its thumbprint (x5t#S256, SHA-256, or x5t, SHA-1), signed
// with that certificate's RSA key (PS256 or RS256), issued by and about the
// client (iss = sub = client_id), for this token endpoint (aud), and
// within its time range (nbf, exp, with five minutes of skew). The
// certificate must not have expired.
func (s *Server) verifyAssertion(r *http.Request, form url.Values, pathTenant, tid string) *oauthFailure {
	if t := form.Get("client_assertion_type"); t != ClientAssertionType {
		return &oauthFailure{status: http.StatusBadRequest, code: "invalid_request", aadsts: 50027,
			desc: fmt.Sprintf("client_assertion_type '%s' is not supported; use '%s'.", t, ClientAssertionType)}
	}
	parts := strings.Split(form.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return invalidClient(50027, "JWT token is invalid or malformed.")
	}
	var h assertionHeader
	var cl assertionClaims
	if !decodeSegment(parts[0], &h) || !decodeSegment(parts[1], &cl) {
		return invalidClient(50027, "JWT token is invalid or malformed.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return invalidClient(50027, "JWT token is invalid or malformed.")
	}

	cert, thumb := s.registeredCert(h)
	if cert == nil {
		return invalidClient(700027, "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '%s']", thumb)
	}
	now := s.now()
	if now.After(cert.NotAfter) {
		return invalidClient(700027, "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '%s']", thumb)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return invalidClient(700027, "Client assertion failed signature validation. [Reason - The key is not an RSA key.]")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch h.Alg {
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	default:
		return invalidClient(700027, "Client assertion failed signature validation. [Reason - The algorithm '%s' is not supported.]", h.Alg)
	}
	if err != nil {
		return invalidClient(700027, "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '%s']", thumb)
	}

	if cl.Iss != s.clientID || cl.Sub != s.clientID {
		return invalidClient(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
	}
	aud, ok := audienceOf(cl.Aud)
	if !ok || !s.tokenEndpointAudience(r, aud, pathTenant, tid) {
		return invalidClient(50027, "Invalid JWT token. Token audience '%s' is not the token endpoint of this tenant.", aud)
	}
	if cl.Jti == "" {
		return invalidClient(50027, "Invalid JWT token. The 'jti' claim is missing.")
	}
	exp, errExp := strconv.ParseInt(cl.Exp.String(), 10, 64)
	if errExp != nil {
		return invalidClient(50027, "Invalid JWT token. The 'exp' claim is missing or not a number.")
	}
	expiry := time.Unix(exp, 0)
	notBefore := time.Time{}
	if cl.Nbf != "" {
		nbf, err := strconv.ParseInt(cl.Nbf.String(), 10, 64)
		if err != nil {
			return invalidClient(50027, "Invalid JWT token. The 'nbf' claim is not a number.")
		}
		notBefore = time.Unix(nbf, 0)
	}
	if now.After(expiry.Add(assertionSkew)) || now.Add(assertionSkew).Before(notBefore) {
		return invalidClient(700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339), notBefore.UTC().Format(time.RFC3339), expiry.UTC().Format(time.RFC3339))
	}
	return nil
}

// decodeSegment decodes a base64url JWT segment into v.
func decodeSegment(seg string, v any) bool {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	return dec.Decode(v) == nil
}

// registeredCert finds the registered certificate the header's thumbprint
// names, and returns the thumbprint as Entra ID would quote it.
func (s *Server) registeredCert(h assertionHeader) (*x509.Certificate, string) {
	want, sha := thumbprintBytes(h.X5tS256), true
	if want == nil {
		want, sha = thumbprintBytes(h.X5t), false
	}
	quoted := strings.ToUpper(hex.EncodeToString(want))
	if want == nil {
		return nil, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.certs {
		var got []byte
		if sha {
			sum := sha256.Sum256(c.Raw)
			got = sum[:]
		} else {
			sum := sha1.Sum(c.Raw)
			got = sum[:]
		}
		if subtle.ConstantTimeCompare(got, want) == 1 {
			return c, quoted
		}
	}
	return nil, quoted
}

// thumbprintBytes decodes an x5t value in any base64 alphabet; nil when
// empty or not base64.
func thumbprintBytes(v string) []byte {
	if v == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b
		}
	}
	return nil
}

// audienceOf reads aud, a string or an array of one string.
func audienceOf(raw json.RawMessage) (string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) == 1 {
		return many[0], true
	}
	return "", false
}

// tokenEndpointAudience reports whether aud is this tenant's token
// endpoint, v2.0 or v1, named by the tenant's ID or domain.
func (s *Server) tokenEndpointAudience(r *http.Request, aud, pathTenant, tid string) bool {
	base := baseURL(r)
	s.org.Mu.RLock()
	domain := s.org.Domain
	s.org.Mu.RUnlock()
	for _, t := range []string{pathTenant, tid, domain} {
		for _, p := range []string{pathToken, "/oauth2/token"} {
			if strings.EqualFold(aud, base+"/"+t+p) {
				return true
			}
		}
	}
	return false
}
