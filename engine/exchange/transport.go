package exchange

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// maxResponse bounds one WinRM answer read into memory; the client asks
// for answers of EnvelopeSize bytes, so anything far larger is broken.
const maxResponse = 16 << 20

// cleanupTimeout bounds the Signal and Delete sent after a run was
// cancelled.
const cleanupTimeout = 15 * time.Second

// WireStats count what went over the wire to the WinRM server.
type WireStats struct {
	Requests      int64 `json:"requests"`
	BytesSent     int64 `json:"bytes_sent"`     // request bodies
	BytesReceived int64 `json:"bytes_received"` // answer bodies
}

type wireCounters struct{ requests, sent, received atomic.Int64 }

func (w *wireCounters) snapshot() WireStats {
	return WireStats{Requests: w.requests.Load(), BytesSent: w.sent.Load(), BytesReceived: w.received.Load()}
}

// newHTTPClient builds the HTTP client every run to the server shares.
func newHTTPClient(cfg Config) (*http.Client, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the admin's choice, off by default
	if len(cfg.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, fmt.Errorf("%w: ca_file holds no PEM certificate", ErrConfig)
		}
		tlsConfig.RootCAs = pool
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseTimeout,
		MaxIdleConnsPerHost:   2 * MaxParallel,
		IdleConnTimeout:       90 * time.Second,
	}}, nil
}

// transport is the winrm.Transporter of one run. It binds every request to
// the run's context, which the library cannot do, turns every answer other
// than 200 into an error (the library's own transport returns a fault's
// body as if it were a success), and counts the bytes.
type transport struct {
	hc         *http.Client
	url        string
	user, pass string
	wire       *wireCounters

	mu      sync.Mutex
	ctx     context.Context
	release context.CancelFunc
}

var _ winrm.Transporter = (*transport)(nil)

// Transport is called by the library with the endpoint; the HTTP client is
// already configured.
func (t *transport) Transport(*winrm.Endpoint) error { return nil }

func (t *transport) context() context.Context {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ctx
}

// detach moves later requests (the Signal and the Delete that end a run) to
// a context of their own, so they still go out when the run's context was
// cancelled.
func (t *transport) detach() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.release == nil {
		t.ctx, t.release = context.WithTimeout(context.WithoutCancel(t.ctx), cleanupTimeout)
	}
}

func (t *transport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.release != nil {
		t.release()
	}
}

// Post sends one envelope and returns the answer.
func (t *transport) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	body := m.String()
	req, err := http.NewRequestWithContext(t.context(), http.MethodPost, t.url, strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%w: build request for %s: %v", ErrConnection, t.url, err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(t.user, t.pass)
	t.wire.requests.Add(1)
	t.wire.sent.Add(int64(len(body)))
	resp, err := t.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: post to %s: %w", ErrConnection, t.url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	var answer strings.Builder
	if resp.ContentLength > 0 && resp.ContentLength <= maxResponse {
		answer.Grow(int(resp.ContentLength))
	}
	n, err := io.Copy(&answer, io.LimitReader(resp.Body, maxResponse+1))
	t.wire.received.Add(n)
	if err != nil {
		return "", fmt.Errorf("%w: read answer from %s: %w", ErrConnection, t.url, err)
	}
	if n > maxResponse {
		return "", fmt.Errorf("%w: answer from %s exceeds %d bytes", ErrConnection, t.url, maxResponse)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return "", fmt.Errorf("%w: %s answered 401 for user %s", ErrUnauthorized, t.url, t.user)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), "application/soap+xml") {
		return "", fmt.Errorf("%w: %s answered HTTP %d with content type %q", ErrConnection, t.url, resp.StatusCode, ct)
	}
	if resp.StatusCode != http.StatusOK {
		return "", parseFault(resp.StatusCode, []byte(answer.String()))
	}
	return answer.String(), nil
}

// unwrapURLError drops *url.Error's repetition of the method and URL.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Post ") {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// FaultError is a WS-Management fault the server answered with.
type FaultError struct {
	Status  int    // HTTP status
	Subcode string // e.g. w:TimedOut, w:QuotaLimit
	Code    string // the WSManFault code, e.g. 2150858793
	Message string
}

// Error says what the server said. A TimedOut fault's message names
// OperationTimeout, which is how the WinRM library recognises it and
// receives again.
func (e *FaultError) Error() string {
	return fmt.Sprintf("winrm fault %s (%s, HTTP %d): %s", e.Subcode, e.Code, e.Status, e.Message)
}

// Unwrap classifies every fault as a connection problem.
func (e *FaultError) Unwrap() error { return ErrConnection }

// parseFault reads a SOAP fault.
func parseFault(status int, body []byte) *FaultError {
	var env struct {
		Subcode string `xml:"Body>Fault>Code>Subcode>Value"`
		Reason  string `xml:"Body>Fault>Reason>Text"`
		Detail  struct {
			Code    string `xml:"Code,attr"`
			Message string `xml:"Message"`
		} `xml:"Body>Fault>Detail>WSManFault"`
	}
	f := &FaultError{Status: status}
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&env); err != nil {
		f.Subcode, f.Message = "unknown", "unreadable fault"
		return f
	}
	f.Subcode, f.Code = strings.TrimSpace(env.Subcode), env.Detail.Code
	f.Message = strings.Join(strings.Fields(env.Detail.Message), " ")
	if f.Message == "" {
		f.Message = strings.Join(strings.Fields(env.Reason), " ")
	}
	return f
}
