package intune

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"easgate/engine"
	"easgate/engine/sim/simtls"
)

// clientCerts caches generated RSA certificates: generating a 2048-bit key
// takes a noticeable moment.
var clientCerts = struct {
	sync.Mutex
	m map[string]*simtls.ClientCertificate
}{m: map[string]*simtls.ClientCertificate{}}

func clientCertNamed(t testing.TB, name string, validity time.Duration) *simtls.ClientCertificate {
	t.Helper()
	clientCerts.Lock()
	defer clientCerts.Unlock()
	if c, ok := clientCerts.m[name]; ok {
		return c
	}
	c, err := simtls.NewClientCertificate(name, validity)
	if err != nil {
		t.Fatal(err)
	}
	clientCerts.m[name] = c
	return c
}

func newClientCert(t testing.TB) *simtls.ClientCertificate {
	return clientCertNamed(t, "easgate", 0)
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCertificateCredentialEndToEnd(t *testing.T) {
	cert := newClientCert(t)
	legacy, err := pkcs12.LegacyDES.Encode(cert.Key, cert.Cert, nil, "legacy-pass")
	if err != nil {
		t.Fatal(err)
	}
	modern, err := pkcs12.Modern2023.Encode(cert.Key, cert.Cert, nil, "modern-pass")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     []byte
		password string
	}{
		{name: "PEM, certificate then key", file: cert.PEM()},
		{name: "PEM, key then certificate", file: append(cert.KeyPEM(), cert.CertPEM()...)},
		{name: "PKCS#12 with 3DES (azidentity reads it)", file: legacy, password: "legacy-pass"},
		{name: "PKCS#12 with AES, as OpenSSL 3 writes it", file: modern, password: "modern-pass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: 30, config: func(c *Config) { c.PageSize = 20 }})
			e.sim.AddClientCertificate(cert.Cert)
			cfg := e.cfg
			cfg.ClientSecret = ""
			cfg.CertificateFile = writeFile(t, "app.cert", tt.file)
			cfg.CertificatePassword = tt.password
			c := e.newClient(cfg)
			inv, err := c.ManagedDevices(t.Context(), engine.MDMQuery{})
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, inv.Devices, e.managed())
			if st := e.sim.Stats(); st.Tokens != 1 || st.CertificateTokens != 1 {
				t.Fatalf("%d tokens, %d for a certificate: want the one token from the assertion", st.Tokens, st.CertificateTokens)
			}
			sum := sha1.Sum(cert.Cert.Raw)
			if d := c.Certificate(); d == nil || d.Thumbprint != strings.ToUpper(hex.EncodeToString(sum[:])) || !d.NotAfter.Equal(cert.Cert.NotAfter.UTC()) {
				t.Fatalf("Certificate() = %+v", d)
			}
			rep, err := c.Test(t.Context())
			if err != nil || rep.Credential != "certificate" || rep.Certificate == nil {
				t.Fatalf("Test = %+v, %v", rep, err)
			}
			e.checkClean()
		})
	}
}

func TestCertificateRefusedByTheAuthority(t *testing.T) {
	registered := newClientCert(t)
	other := clientCertNamed(t, "not registered", 0)
	expired := clientCertNamed(t, "expired", -time.Hour)
	tests := []struct {
		name     string
		register *simtls.ClientCertificate
		use      *simtls.ClientCertificate
		want     []string
	}{
		{name: "certificate not registered", register: registered, use: other, want: []string{"401", "invalid_client", "AADSTS700027", "key was not found"}},
		{name: "registered certificate expired", register: expired, use: expired, want: []string{"AADSTS700027", "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: 5})
			e.sim.AddClientCertificate(tt.register.Cert)
			cfg := e.cfg
			cfg.ClientSecret = ""
			cfg.CertificateFile = writeFile(t, "app.pem", tt.use.PEM())
			c := e.newClient(cfg)
			_, err := c.ManagedDevices(t.Context(), engine.MDMQuery{})
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("err = %v, want ErrAuthentication", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if st := e.sim.Stats(); st.Graph != 0 || st.Tokens != 0 {
				t.Fatalf("a token or a Graph page without a valid assertion: %+v", st)
			}
		})
	}
}

func TestCertificateFileProblems(t *testing.T) {
	cert := newClientCert(t)
	other := clientCertNamed(t, "not registered", 0)
	pfx, err := pkcs12.Modern2023.Encode(cert.Key, cert.Cert, nil, "right")
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPEM := append(cert.CertPEM(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})...)
	tests := []struct {
		name     string
		file     []byte // nil: no file at all
		password string
		secret   string
		want     string
	}{
		{name: "missing file", want: "read certificate_file"},
		{name: "wrong PKCS#12 password", file: pfx, password: "not-the-password-7Q", want: "wrong password"},
		{name: "not a certificate", file: []byte("hello, world"), want: "not a PEM file"},
		{name: "certificate without its key", file: cert.CertPEM(), want: "not a PEM file"},
		{name: "key of another certificate", file: append(cert.CertPEM(), other.KeyPEM()...), want: "belongs to none"},
		{name: "ECDSA key", file: ecPEM, want: "only RSA"},
		{name: "secret as well", file: cert.PEM(), secret: "s3cret-value", want: "use one credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "absent.pem")
			if tt.file != nil {
				path = writeFile(t, "app.cert", tt.file)
			}
			_, err := New(Config{TenantID: "contoso.com", ClientID: "9c2d7f4e-5b1a-4e3c-8f6d-2a7b1c0e4d51",
				ClientSecret: tt.secret, CertificateFile: path, CertificatePassword: tt.password,
				GraphURL: "https://graph.microsoft.com", AuthorityURL: "https://login.microsoftonline.com"}, nil)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, "PRIVATE KEY") || (tt.password != "" && strings.Contains(msg, tt.password)) ||
				(tt.secret != "" && strings.Contains(msg, tt.secret)) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q leaks a secret or spans lines", msg)
			}
		})
	}
}
