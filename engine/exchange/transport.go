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

// WireStats count what went over the wire to the WinRM servers.
type WireStats struct {
	Requests      int64 `json:"requests"`
	BytesSent     int64 `json:"bytes_sent"`     // request bodies
	BytesReceived int64 `json:"bytes_received"` // answer bodies
}

type wireCounters struct{ requests, sent, received atomic.Int64 }

func (w *wireCounters) snapshot() WireStats {
	return WireStats{Requests: w.requests.Load(), BytesSent: w.sent.Load(), BytesReceived: w.received.Load()}
}

// newBaseTransport builds the HTTP transport every request to the servers
// shares (NTLM clones it into single-connection lanes). HTTP/1.1 only:
// Windows' NTLM and Kerberos bind to HTTP/1.1 connections.
func newBaseTransport(cfg Config) (*http.Transport, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the admin's choice, off by default
	if len(cfg.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, fmt.Errorf("%w: ca_file holds no PEM certificate", ErrConfig)
		}
		tlsConfig.RootCAs = pool
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseTimeout,
		MaxIdleConnsPerHost:   2 * MaxParallel,
		IdleConnTimeout:       90 * time.Second,
	}, nil
}

// transport is the winrm.Transporter of one shell. It binds every request
// to the context of the command in progress, which the library cannot do,
// turns every answer other than 200 into an error (the library's own
// transport returns a fault's body as if it were a success), classifies
// failures, and counts the bytes.
type transport struct {
	srv *server

	mu      sync.Mutex
	ctx     context.Context
	release context.CancelFunc
	// lastReceive is when the shell's last Receive was answered, and
	// quick how many Receives in a row came back sooner than
	// receivePacing after they went out.
	lastReceive time.Time
	quick       int
	// out takes the streams of the running command's Receive answers;
	// nil between commands (see receive.go).
	out *commandOutput
}

// receiveAction marks a Receive envelope.
const receiveAction = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive<"

// receivePacing is the least time between the answer to one Receive and
// the next once output streams: receivePaceAfter Receives in a row each
// answered at once. A script writing a line every few milliseconds (a
// result per Set-CASMailbox) would otherwise cost a round trip a line;
// paced, one Receive collects every line written meanwhile. A short
// command's few Receives are never held back.
const (
	receivePacing    = 100 * time.Millisecond
	receivePaceAfter = 4
)

// pace holds a Receive back until receivePacing after the last one, when
// output streams.
func (t *transport) pace(ctx context.Context) error {
	t.mu.Lock()
	wait := receivePacing - time.Since(t.lastReceive)
	streaming := t.quick >= receivePaceAfter
	t.mu.Unlock()
	if wait <= 0 || !streaming {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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

// bind makes later requests part of ctx: a command, or the shell's
// creation.
func (t *transport) bind(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quick = 0
	t.out = nil
	if t.release != nil {
		t.release()
		t.release = nil
	}
	t.ctx = ctx
}

// detach moves later requests (the Signal and the Delete that end a run) to
// a context of their own, so they still go out when the run's context was
// cancelled.
func (t *transport) detach() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.out = nil
	if t.release == nil {
		t.ctx, t.release = context.WithTimeout(context.WithoutCancel(t.ctx), cleanupTimeout)
	}
}

// capture hands the streams of the command about to start to o.
func (t *transport) capture(o *commandOutput) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.out = o
}

func (t *transport) output() *commandOutput {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out
}

func (t *transport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.release != nil {
		t.release()
		t.release = nil
	}
}

// answerBuffers hold the answers read: a large inventory's thousands of
// Receives would otherwise each allocate one of up to EnvelopeSize bytes.
var answerBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledAnswer is the largest buffer kept for the next answer.
const maxPooledAnswer = 1 << 20

// Post sends one envelope and returns the answer.
func (t *transport) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	var received int64 // the answer's size, read by the pacing bookkeeping
	text := m.String()
	receive := strings.Contains(text, receiveAction)
	if receive {
		if err := t.pace(t.context()); err != nil {
			return "", &connError{kind: ErrConnection, err: fmt.Errorf("wait to receive output from %s: %w", t.srv.url, err)}
		}
		sent := time.Now()
		defer func() {
			t.mu.Lock()
			t.lastReceive = time.Now()
			// A quick, small answer: the script writes slower than we
			// read. A full one means output is queued: read on at once.
			if t.lastReceive.Sub(sent) < receivePacing && received < int64(t.srv.c.cfg.EnvelopeSize/2) {
				t.quick++
			} else {
				t.quick = 0
			}
			t.mu.Unlock()
		}()
	}
	body := []byte(text)
	req, err := http.NewRequestWithContext(t.context(), http.MethodPost, t.srv.url, nil)
	if err != nil {
		return "", &connError{kind: ErrConnection, err: fmt.Errorf("build request for %s: %w", t.srv.url, err)}
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	wire := &t.srv.c.wire
	wire.requests.Add(1)
	wire.sent.Add(int64(len(body)))
	resp, err := t.srv.auth.roundTrip(req, body)
	if err != nil {
		return "", classify(err)
	}
	defer resp.Body.Close()
	answer := answerBuffers.Get().(*bytes.Buffer)
	defer func() {
		if answer.Cap() <= maxPooledAnswer {
			answer.Reset()
			answerBuffers.Put(answer)
		}
	}()
	answer.Reset()
	if resp.ContentLength > 0 && resp.ContentLength <= maxResponse {
		answer.Grow(int(resp.ContentLength))
	}
	n, err := answer.ReadFrom(io.LimitReader(resp.Body, maxResponse+1))
	received = n
	wire.received.Add(n)
	if err != nil {
		return "", classify(fmt.Errorf("read answer from %s: %w", t.srv.url, err))
	}
	if n > maxResponse {
		return "", &connError{kind: ErrServerError, err: fmt.Errorf("answer from %s exceeds %d bytes", t.srv.url, maxResponse)}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return "", fmt.Errorf("%w: %s answered 401 to %s authentication of %s", ErrUnauthorized, t.srv.url, t.srv.c.cfg.Auth, t.srv.c.cfg.Username)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), "application/soap+xml") {
		return "", &connError{kind: ErrServerError, err: fmt.Errorf("%s answered HTTP %d with content type %q", t.srv.url, resp.StatusCode, ct)}
	}
	if resp.StatusCode != http.StatusOK {
		return "", parseFault(resp.StatusCode, answer.Bytes())
	}
	if out := t.output(); receive && out != nil {
		return out.deliver(answer.Bytes()), nil
	}
	return answer.String(), nil
}

// classify wraps a failed request in the kind of failure it was.
func classify(err error) error {
	if errors.Is(err, ErrConnection) || errors.Is(err, ErrUnauthorized) {
		return err
	}
	err = unwrapURLError(err)
	var (
		verify *tls.CertificateVerificationError
		record tls.RecordHeaderError
		alert  tls.AlertError
		op     *net.OpError
		dns    *net.DNSError
	)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return &connError{kind: ErrConnection, err: err}
	case errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &alert) ||
		strings.Contains(err.Error(), "TLS handshake") || strings.Contains(err.Error(), "tls: ") ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &connError{kind: ErrTLS, err: err}
	case errors.As(err, &dns), errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect"):
		return &connError{kind: ErrUnreachable, err: err}
	}
	return &connError{kind: ErrConnection, err: err}
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
	return fmt.Sprintf("%v: HTTP %d, winrm fault %s (%s): %s", ErrServerError, e.Status, e.Subcode, e.Code, e.Message)
}

// Unwrap classifies every fault as an error answer, and so a connection
// problem.
func (e *FaultError) Unwrap() []error { return []error{ErrServerError, ErrConnection} }

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
