package intune

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Certificate describes the certificate a client authenticates with. It
// holds nothing secret.
type Certificate struct {
	Subject string `json:"subject"`
	// Thumbprint is the SHA-1 hash of the certificate, in upper-case hex,
	// as Entra ID's app registration page shows it.
	Thumbprint string `json:"thumbprint"`
	// ThumbprintSHA256 is what MSAL sends in the assertion's x5t#S256.
	ThumbprintSHA256 string    `json:"thumbprint_sha256"`
	NotBefore        time.Time `json:"not_before"`
	NotAfter         time.Time `json:"not_after"`
}

// certificateCredential is a parsed certificate file.
type certificateCredential struct {
	certs []*x509.Certificate
	key   *rsa.PrivateKey
	leaf  *x509.Certificate
}

// loadCertificate reads a PEM or PKCS#12 certificate file. azidentity's
// ParseCertificates reads PEM and PKCS#12 files with the legacy 3DES/RC2
// encryption; files that OpenSSL 3 and current Windows write by default
// (PBES2 with AES) are read with go-pkcs12 instead.
func loadCertificate(path, password string) (*certificateCredential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read certificate_file: %v", ErrConfig, err)
	}
	certs, key, perr := azidentity.ParseCertificates(data, []byte(password))
	if perr != nil && !isPEM(data) {
		var k any
		var leaf *x509.Certificate
		var chain []*x509.Certificate
		k, leaf, chain, err = pkcs12.DecodeChain(data, password)
		if err == nil {
			certs, key, perr = append([]*x509.Certificate{leaf}, chain...), k, nil
		} else if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, fmt.Errorf("%w: certificate_file %s: wrong password for the PKCS#12 file", ErrConfig, path)
		}
	}
	if perr != nil {
		// The parse errors name no key material; they can be shown.
		return nil, fmt.Errorf("%w: certificate_file %s: not a PEM file with a certificate and an unencrypted key, nor a PKCS#12 file this password opens: %v",
			ErrConfig, path, oneLine(perr.Error(), 200))
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: certificate_file %s: the private key is %s; Entra ID accepts only RSA keys for certificate credentials",
			ErrConfig, path, keyKind(key))
	}
	cc := &certificateCredential{certs: certs, key: rk}
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&rk.PublicKey) {
			cc.leaf = c
			break
		}
	}
	if cc.leaf == nil {
		return nil, fmt.Errorf("%w: certificate_file %s: the private key belongs to none of its certificates", ErrConfig, path)
	}
	return cc, nil
}

func isPEM(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN "))
}

func keyKind(k crypto.PrivateKey) string {
	switch k.(type) {
	case nil:
		return "missing"
	case *rsa.PrivateKey:
		return "RSA"
	}
	t := fmt.Sprintf("%T", k)
	return strings.TrimPrefix(t, "*")
}

// describe returns what a report may show of the certificate.
func (cc *certificateCredential) describe() *Certificate {
	s1 := sha1.Sum(cc.leaf.Raw)
	s256 := sha256.Sum256(cc.leaf.Raw)
	return &Certificate{
		Subject:          cc.leaf.Subject.String(),
		Thumbprint:       strings.ToUpper(hex.EncodeToString(s1[:])),
		ThumbprintSHA256: strings.ToUpper(hex.EncodeToString(s256[:])),
		NotBefore:        cc.leaf.NotBefore.UTC(),
		NotAfter:         cc.leaf.NotAfter.UTC(),
	}
}

// credentialBuilder makes a fresh azidentity credential: one with an empty
// token cache, for when Graph refused a token the cache still holds.
type credentialBuilder func() (azcore.TokenCredential, error)

// newCredentialBuilder returns the builder for the configured credential
// (client secret or certificate), talking to the authority through
// transport.
func newCredentialBuilder(v *validated, transport *http.Client) (credentialBuilder, *certificateCredential, error) {
	client := azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: v.authority},
		Transport: transport,
		Retry: policy.RetryOptions{ShouldRetry: retryTokenRequest, MaxRetries: 3,
			RetryDelay: v.RetryBaseDelay, MaxRetryDelay: min(v.MaxRetryWait, 10*time.Second)},
	}
	if v.CertificateFile == "" {
		build := func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(v.TenantID, v.ClientID, v.ClientSecret, &azidentity.ClientSecretCredentialOptions{
				ClientOptions: client,
				// Instance discovery would ask login.microsoftonline.com
				// about a custom authority host; the authority is
				// configuration instead.
				DisableInstanceDiscovery: true,
			})
		}
		return build, nil, nil
	}
	cc, err := loadCertificate(v.CertificateFile, v.CertificatePassword)
	if err != nil {
		return nil, nil, err
	}
	build := func() (azcore.TokenCredential, error) {
		return azidentity.NewClientCertificateCredential(v.TenantID, v.ClientID, cc.certs, cc.key, &azidentity.ClientCertificateCredentialOptions{
			ClientOptions:            client,
			DisableInstanceDiscovery: true,
			SendCertificateChain:     v.SendCertificateChain,
		})
	}
	return build, cc, nil
}

// tokenSource is the credential the SDK's authentication provider asks for
// tokens. It forwards to an azidentity credential, whose cache serves a
// token until the token's own expiry by the local clock; when Graph
// refuses a token the cache still holds (revoked, or the clocks disagree),
// renew replaces the credential, and with it the cache.
type tokenSource struct {
	build credentialBuilder

	mu   sync.Mutex
	cred azcore.TokenCredential
}

func newTokenSource(build credentialBuilder) (*tokenSource, error) {
	cred, err := build()
	if err != nil {
		return nil, err
	}
	return &tokenSource{build: build, cred: cred}, nil
}

func (s *tokenSource) current() azcore.TokenCredential {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cred
}

// GetToken returns the current credential's token.
func (s *tokenSource) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return s.current().GetToken(ctx, opts)
}

// renew returns a token other than stale: the current credential's if
// another request renewed it already, else one from a new credential.
func (s *tokenSource) renew(ctx context.Context, stale string, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cur := s.current()
	tok, err := cur.GetToken(ctx, opts)
	if err == nil && tok.Token != stale {
		return tok, nil
	}
	s.mu.Lock()
	if s.cred == cur {
		fresh, berr := s.build()
		if berr != nil {
			s.mu.Unlock()
			return azcore.AccessToken{}, berr
		}
		s.cred = fresh
	}
	cur = s.cred
	s.mu.Unlock()
	return cur.GetToken(ctx, opts)
}
