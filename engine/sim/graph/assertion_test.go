package graph

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"easgate/engine/sim/simtls"
)

// assertion builds a client assertion the way MSAL does, then lets a test
// spoil one part of it.
type assertion struct {
	header map[string]any
	claims map[string]any
	key    *rsa.PrivateKey
}

func (a assertion) sign(t *testing.T) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(a.header)
	c, _ := json.Marshal(a.claims)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(signing))
	var sig []byte
	var err error
	switch a.header["alg"] {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, digest[:])
	default:
		sig, err = rsa.SignPSS(rand.Reader, a.key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

func TestClientAssertion(t *testing.T) {
	cert, err := simtls.NewClientCertificate("app", 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := simtls.NewClientCertificate("other", 0)
	if err != nil {
		t.Fatal(err)
	}
	expiredCert, err := simtls.NewClientCertificate("expired", -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, 3, Options{Now: time.Now, ClientCertificates: []*x509.Certificate{cert.Cert, expiredCert.Cert}})
	s256 := sha256.Sum256(cert.Cert.Raw)
	s1 := sha1.Sum(cert.Cert.Raw)
	expS256 := sha256.Sum256(expiredCert.Cert.Raw)
	endpoint := f.url + "/" + f.srv.TenantID() + "/oauth2/v2.0/token"
	now := time.Now()
	good := func() assertion {
		return assertion{
			header: map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.StdEncoding.EncodeToString(s256[:])},
			claims: map[string]any{"aud": endpoint, "iss": f.srv.ClientID(), "sub": f.srv.ClientID(), "jti": "a1",
				"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()},
			key: cert.Key,
		}
	}
	tests := []struct {
		name   string
		spoil  func(a *assertion)
		form   func(v url.Values)
		status int
		aadsts string
	}{
		{name: "PS256 with x5t#S256, as MSAL sends it", status: http.StatusOK},
		{name: "RS256 with a SHA-1 x5t in base64url", spoil: func(a *assertion) {
			a.header = map[string]any{"alg": "RS256", "typ": "JWT", "x5t": base64.RawURLEncoding.EncodeToString(s1[:])}
		}, status: http.StatusOK},
		{name: "v1 token endpoint as audience", spoil: func(a *assertion) {
			a.claims["aud"] = f.url + "/contoso.com/oauth2/token"
		}, status: http.StatusOK},
		{name: "certificate not registered", spoil: func(a *assertion) {
			o := sha256.Sum256(other.Cert.Raw)
			a.header["x5t#S256"] = base64.StdEncoding.EncodeToString(o[:])
			a.key = other.Key
		}, status: http.StatusUnauthorized, aadsts: "AADSTS700027"},
		{name: "signed by another key", spoil: func(a *assertion) { a.key = other.Key }, status: http.StatusUnauthorized, aadsts: "AADSTS700027"},
		{name: "registered certificate expired", spoil: func(a *assertion) {
			a.header["x5t#S256"] = base64.StdEncoding.EncodeToString(expS256[:])
			a.key = expiredCert.Key
		}, status: http.StatusUnauthorized, aadsts: "AADSTS700027"},
		{name: "HS256", spoil: func(a *assertion) { a.header["alg"] = "HS256" }, status: http.StatusUnauthorized, aadsts: "AADSTS700027"},
		{name: "issuer is not the client", spoil: func(a *assertion) { a.claims["iss"] = "someone-else" }, status: http.StatusUnauthorized, aadsts: "AADSTS700021"},
		{name: "subject is not the client", spoil: func(a *assertion) { a.claims["sub"] = "someone-else" }, status: http.StatusUnauthorized, aadsts: "AADSTS700021"},
		{name: "audience another endpoint", spoil: func(a *assertion) { a.claims["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token" },
			status: http.StatusUnauthorized, aadsts: "AADSTS50027"},
		{name: "expired assertion", spoil: func(a *assertion) { a.claims["exp"] = now.Add(-10 * time.Minute).Unix() },
			status: http.StatusUnauthorized, aadsts: "AADSTS700024"},
		{name: "not yet valid", spoil: func(a *assertion) { a.claims["nbf"] = now.Add(10 * time.Minute).Unix() },
			status: http.StatusUnauthorized, aadsts: "AADSTS700024"},
		{name: "no jti", spoil: func(a *assertion) { delete(a.claims, "jti") }, status: http.StatusUnauthorized, aadsts: "AADSTS50027"},
		{name: "no exp", spoil: func(a *assertion) { delete(a.claims, "exp") }, status: http.StatusUnauthorized, aadsts: "AADSTS50027"},
		{name: "wrong assertion type", form: func(v url.Values) { v.Set("client_assertion_type", "urn:other") },
			status: http.StatusBadRequest, aadsts: "AADSTS50027"},
		{name: "not a JWT", form: func(v url.Values) { v.Set("client_assertion", "a.b") }, status: http.StatusUnauthorized, aadsts: "AADSTS50027"},
	}
	issued := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := good()
			if tt.spoil != nil {
				tt.spoil(&a)
			}
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {f.srv.ClientID()},
				"client_assertion_type": {ClientAssertionType}, "client_assertion": {a.sign(t)}, "scope": {f.url + "/.default"}}
			if tt.form != nil {
				tt.form(form)
			}
			resp, body := f.tokenRequest(form)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusOK {
				issued++
				tok, _ := body["access_token"].(string)
				if r, b := f.get(f.url+PathManagedDevices+"?$top=1", tok); r.StatusCode != http.StatusOK {
					t.Fatalf("the assertion's token does not read Graph: %d %v", r.StatusCode, b)
				}
				return
			}
			desc, _ := body["error_description"].(string)
			if !strings.HasPrefix(desc, tt.aadsts+":") {
				t.Fatalf("error %v, want %s", body, tt.aadsts)
			}
		})
	}
	if st := f.srv.Stats(); st.CertificateTokens != issued || st.Tokens != issued {
		t.Fatalf("stats %+v: want %d tokens, all for the certificate", st, issued)
	}
}
