package simtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// Validity is how long certificates made by New stay valid. They start an
// hour in the past so that a clock a little behind does not reject them.
const Validity = 25 * time.Hour

// CA is an in-memory certificate authority and the server certificate it
// issued for the loopback addresses.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	server  tls.Certificate
	pool    *x509.CertPool
}

// New makes a fresh ECDSA P-256 certificate authority and a server
// certificate for 127.0.0.1, ::1 and localhost signed by it.
func New() (*CA, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "easgate simulator CA", Organization: []string{"easgate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"easgate"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	srvCert, err := x509.ParseCertificate(srvDER)
	if err != nil {
		return nil, fmt.Errorf("parse server certificate: %w", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &CA{
		cert:    caCert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server: tls.Certificate{
			Certificate: [][]byte{srvDER, caDER},
			PrivateKey:  srvKey,
			Leaf:        srvCert,
		},
		pool: pool,
	}, nil
}

// serial returns a random 128-bit certificate serial number. crypto/rand
// never fails on the platforms Go supports, so neither does this.
func serial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}

// ServerTLS returns a new TLS configuration for a server presenting the
// loopback certificate, TLS 1.2 at least. Each call returns a fresh value the
// caller may change.
func (c *CA) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.server},
	}
}

// ClientTLS returns a new TLS configuration for a client that trusts only
// this CA.
func (c *CA) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.Pool()}
}

// Pool returns a certificate pool holding only the CA certificate.
func (c *CA) Pool() *x509.CertPool { return c.pool.Clone() }

// CertPEM returns the CA certificate, PEM-encoded: what a client's ca_file
// holds to trust the simulators.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// Certificate returns the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// WriteCertFile writes the CA certificate as PEM to path, readable by all:
// it is public.
func (c *CA) WriteCertFile(path string) error {
	if err := os.WriteFile(path, c.certPEM, 0o644); err != nil {
		return fmt.Errorf("write CA certificate to %s: %w", path, err)
	}
	return nil
}

// ClientCertificate is an application's certificate credential: a
// self-signed RSA certificate, which an admin uploads to the app
// registration, and its private key, which the application keeps.
type ClientCertificate struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// ClientKeyBits is the RSA key size of client certificates: the smallest
// Entra ID accepts.
const ClientKeyBits = 2048

// NewClientCertificate makes a self-signed RSA certificate for an
// application, valid from an hour ago for validity (Validity when zero).
// A negative validity makes a certificate that has already expired.
func NewClientCertificate(commonName string, validity time.Duration) (*ClientCertificate, error) {
	if validity == 0 {
		validity = Validity
	}
	key, err := rsa.GenerateKey(rand.Reader, ClientKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	now := time.Now()
	notBefore := now.Add(-time.Hour)
	notAfter := now.Add(validity)
	if validity < 0 {
		notBefore = notAfter.Add(-48 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"easgate"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create client certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse client certificate: %w", err)
	}
	return &ClientCertificate{Cert: cert, Key: key}, nil
}

// CertPEM returns the certificate alone, PEM-encoded: what is uploaded to
// the app registration.
func (c *ClientCertificate) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM returns the private key as an unencrypted PKCS#8 PEM block.
func (c *ClientCertificate) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		// An RSA key this package generated always marshals.
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PEM returns the certificate followed by its private key: the PEM file an
// application's certificate_file names.
func (c *ClientCertificate) PEM() []byte {
	return append(c.CertPEM(), c.KeyPEM()...)
}

// WriteFile writes PEM to path, readable by its owner only: it holds the
// private key.
func (c *ClientCertificate) WriteFile(path string) error {
	if err := os.WriteFile(path, c.PEM(), 0o600); err != nil {
		return fmt.Errorf("write client certificate to %s: %w", path, err)
	}
	return nil
}
