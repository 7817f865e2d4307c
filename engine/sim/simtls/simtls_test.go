package simtls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestServerCertificateVerifiesForLoopbackNames(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		host string
		ok   bool
	}{
		{name: "ipv4 loopback", host: "127.0.0.1", ok: true},
		{name: "ipv6 loopback", host: "::1", ok: true},
		{name: "localhost", host: "localhost", ok: true},
		{name: "other name", host: "graph.microsoft.com", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.server.Leaf.Verify(x509.VerifyOptions{
				DNSName:   tt.host,
				Roots:     ca.Pool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err == nil) != tt.ok {
				t.Fatalf("verify %s: err = %v, want ok = %v", tt.host, err, tt.ok)
			}
		})
	}
}

func TestHTTPSRoundTripWithCertFile(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCertFile(path); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(pemBytes); b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("ca file is not a PEM certificate: %q", pemBytes)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("ca file not accepted by a cert pool")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: ca.ServerTLS(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}),
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("https://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "ok" {
		t.Fatalf("body = %q", body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("connection state %+v: want TLS 1.2 or later", resp.TLS)
	}
}

func TestOldTLSRefused(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if got := ca.ServerTLS().MinVersion; got != tls.VersionTLS12 {
		t.Fatalf("MinVersion = %x, want TLS 1.2", got)
	}
}

func TestClientCertificate(t *testing.T) {
	tests := []struct {
		name     string
		validity time.Duration
		expired  bool
	}{
		{name: "default validity"},
		{name: "a year", validity: 365 * 24 * time.Hour},
		{name: "already expired", validity: -time.Hour, expired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClientCertificate("easgate app", tt.validity)
			if err != nil {
				t.Fatal(err)
			}
			if c.Key.N.BitLen() != ClientKeyBits || c.Cert.Subject.CommonName != "easgate app" {
				t.Fatalf("key %d bits, subject %s", c.Key.N.BitLen(), c.Cert.Subject)
			}
			if got := time.Now().After(c.Cert.NotAfter); got != tt.expired {
				t.Fatalf("expired = %v (NotAfter %v), want %v", got, c.Cert.NotAfter, tt.expired)
			}
			// The PEM file holds the certificate and its key, which match.
			pair, err := tls.X509KeyPair(c.PEM(), c.PEM())
			if err != nil {
				t.Fatalf("PEM is not a certificate and its key: %v", err)
			}
			if !bytes.Equal(pair.Certificate[0], c.Cert.Raw) {
				t.Fatal("PEM certificate is another one")
			}
			path := filepath.Join(t.TempDir(), "app.pem")
			if err := c.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v, %v: want 0600", fi.Mode().Perm(), err)
			}
		})
	}
}
