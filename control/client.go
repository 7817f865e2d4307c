package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"easgate/engine"
)

// Client is a connection to a running service's control socket. It
// implements engine.API, so the console and the CLI drive a service exactly
// as they drive an in-process engine. It is safe for concurrent use.
type Client struct {
	path     string
	http     *http.Client
	info     Info
	readOnly bool
}

var _ engine.API = (*Client)(nil)

// baseURL is the URL prefix of every call; the host is never resolved.
const baseURL = "http://easgate"

// Dial connects to the service at path and asks who it is. It returns an
// error wrapping ErrNoService when nothing listens there (no file, or a
// crashed service's socket), and one wrapping ErrForbidden when the socket
// refuses this user.
func Dial(ctx context.Context, path string) (*Client, error) {
	dialer := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 4,
	}
	c := &Client{path: path, http: &http.Client{Transport: tr}}
	var in Info
	if err := c.call(ctx, http.MethodGet, pathPing, nil, &in); err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	if in.Service != serviceName {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("control socket %s: the server there is not easgate", path)
	}
	c.info = in
	return c, nil
}

// Info returns what the service said about itself when the client dialled.
func (c *Client) Info() Info { return c.info }

// Path returns the socket's path.
func (c *Client) Path() string { return c.path }

// ReadOnly returns a client on the same connection that refuses every call
// that changes Exchange or the store, as a read-only engine does.
func (c *Client) ReadOnly() *Client {
	cp := *c
	cp.readOnly = true
	return &cp
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// dialError classifies a failure to reach the socket.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("control socket %s: %w (%w)", c.path, ErrNoService, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("control socket %s: %w (%w)", c.path, ErrForbidden, err)
	}
	return fmt.Errorf("control socket %s: %w", c.path, err)
}

// do sends a request and returns the response of a successful call.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s request: %w", path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentJSON)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, c.dialError(op)
		}
		return nil, fmt.Errorf("control socket %s: %w", c.path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var w wireError
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&w)
		return nil, decodeError(resp.StatusCode, w)
	}
	return resp, nil
}

// call makes one call and decodes its result into out (nil: none).
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("control socket %s: decode %s answer: %w", c.path, path, err)
	}
	return nil
}

// callList makes a call whose result is a list the server streams, and
// decodes it element by element into a slice sized from the server's count.
func callList[T any](c *Client, ctx context.Context, path string, body any) ([]T, error) {
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n, _ := strconv.Atoi(resp.Header.Get(headerCount))
	out := make([]T, 0, max(min(n, 1<<22), 0))
	dec := json.NewDecoder(resp.Body)
	fail := func(err error) ([]T, error) {
		return nil, fmt.Errorf("control socket %s: decode %s answer: %w", c.path, path, err)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return fail(fmt.Errorf("want a JSON array, got %v (%v)", tok, err))
	}
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return fail(err)
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil {
		return fail(err)
	}
	return out, nil
}

// mutating refuses a call on a read-only client.
func (c *Client) mutating() error {
	if c.readOnly {
		return engine.ErrReadOnly
	}
	return nil
}

// Status returns the service's overview.
func (c *Client) Status(ctx context.Context) (engine.Status, error) {
	var s engine.Status
	err := c.call(ctx, http.MethodGet, pathStatus, nil, &s)
	if c.readOnly {
		s.ReadOnly = true
	}
	return s, err
}

// Devices returns the selected device records.
func (c *Client) Devices(ctx context.Context, q engine.DeviceQuery) ([]engine.DeviceRecord, error) {
	return callList[engine.DeviceRecord](c, ctx, pathDevices, q)
}

// Device returns one device with everything known about it.
func (c *Client) Device(ctx context.Context, key engine.DeviceKey) (*engine.DeviceDetail, error) {
	var out engine.DeviceDetail
	if err := c.call(ctx, http.MethodPost, pathDevice, deviceBody{key}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Runs returns up to limit runs, newest first.
func (c *Client) Runs(ctx context.Context, limit int) ([]engine.Run, error) {
	return callList[engine.Run](c, ctx, pathRuns, limitBody{limit})
}

// Journal returns journal entries, oldest first.
func (c *Client) Journal(ctx context.Context, q engine.JournalQuery) ([]engine.JournalEntry, error) {
	return callList[engine.JournalEntry](c, ctx, pathJournal, q)
}

// Sync asks the service for a run and waits for it to end. The service
// records the caller's OS user as the run's actor.
func (c *Client) Sync(ctx context.Context, req engine.SyncRequest) (*engine.RunReport, error) {
	if !req.DryRun {
		if err := c.mutating(); err != nil {
			return nil, err
		}
	}
	var out engine.RunReport
	if err := c.call(ctx, http.MethodPost, pathSync, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Subscribe streams the service's events until ctx is done or the service
// goes; the channel is then closed.
func (c *Client) Subscribe(ctx context.Context) (<-chan engine.Event, error) {
	resp, err := c.do(ctx, http.MethodGet, pathEvents, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan engine.Event, 256)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev engine.Event
			if err := dec.Decode(&ev); err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// RunDetail returns a run with its journal entries and held plan.
func (c *Client) RunDetail(ctx context.Context, id string) (*engine.RunDetail, error) {
	var out engine.RunDetail
	if err := c.call(ctx, http.MethodPost, pathRunDetail, idBody{id}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Candidates returns the MDM records that could be linked to a device.
func (c *Client) Candidates(ctx context.Context, device engine.DeviceKey) ([]engine.Candidate, error) {
	var out []engine.Candidate
	return out, c.call(ctx, http.MethodPost, pathCandidates, deviceBody{device}, &out)
}

// Logs returns the service's recent log lines.
func (c *Client) Logs(ctx context.Context, limit int) ([]engine.LogEntry, error) {
	var out []engine.LogEntry
	return out, c.call(ctx, http.MethodPost, pathLogs, limitBody{limit}, &out)
}

// Link links a device to an MDM record by hand.
func (c *Client) Link(ctx context.Context, req engine.LinkRequest) error {
	if err := c.mutating(); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, pathLink, req, nil)
}

// Unlink removes a manual link.
func (c *Client) Unlink(ctx context.Context, req engine.DeviceRequest) error {
	if err := c.mutating(); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, pathUnlink, req, nil)
}

// Resend sends the enrollment notification for each device now.
func (c *Client) Resend(ctx context.Context, req engine.ResendRequest) ([]engine.NotifyResult, error) {
	if err := c.mutating(); err != nil {
		return nil, err
	}
	var out []engine.NotifyResult
	return out, c.call(ctx, http.MethodPost, pathResend, req, &out)
}

// Preview renders the notification a device's user would get.
func (c *Client) Preview(ctx context.Context, device engine.DeviceKey) (*engine.MailPreview, error) {
	var out engine.MailPreview
	if err := c.call(ctx, http.MethodPost, pathPreview, deviceBody{device}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Override allows or blocks a device by hand, or clears an override.
func (c *Client) Override(ctx context.Context, req engine.OverrideRequest) error {
	if err := c.mutating(); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, pathOverride, req, nil)
}

// RemovePartnership removes a device's partnership from Exchange.
func (c *Client) RemovePartnership(ctx context.Context, req engine.DeviceRequest) error {
	if err := c.mutating(); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, pathRemove, req, nil)
}

// Wipe asks Exchange to wipe a device or its mail account.
func (c *Client) Wipe(ctx context.Context, req engine.WipeRequest) error {
	if err := c.mutating(); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, pathWipe, req, nil)
}

// Statistics reads Exchange's statistics of one partnership, live.
func (c *Client) Statistics(ctx context.Context, device engine.DeviceKey) (*engine.DeviceStatistics, error) {
	var out engine.DeviceStatistics
	if err := c.call(ctx, http.MethodPost, pathStatistics, deviceBody{device}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Approve applies the plan the brake holds.
func (c *Client) Approve(ctx context.Context, req engine.PlanRequest) (*engine.RunReport, error) {
	if err := c.mutating(); err != nil {
		return nil, err
	}
	var out engine.RunReport
	if err := c.call(ctx, http.MethodPost, pathApprove, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Discard drops the held plan.
func (c *Client) Discard(ctx context.Context, req engine.PlanRequest) error {
	if err := c.mutating(); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, pathDiscard, req, nil)
}

// Cancel stops the service's running sync. The service records the
// caller's OS user, whatever actor says.
func (c *Client) Cancel(ctx context.Context, actor string) error {
	if err := c.mutating(); err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, pathCancel, struct{}{}, nil)
}

// Backup streams a consistent copy of the service's store into w and
// returns the bytes written. It fails if the service reports an error or
// the copy arrived short.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, pathStoreBackup, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("control socket %s: receive the backup: %w", c.path, err)
	}
	// The trailers are read once the body is consumed.
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return n, fmt.Errorf("the service's backup failed: %s", msg)
	}
	want, err := strconv.ParseInt(resp.Trailer.Get(trailerBytes), 10, 64)
	if err != nil {
		return n, fmt.Errorf("control socket %s: the backup ended without its size", c.path)
	}
	if want != n {
		return n, fmt.Errorf("control socket %s: the backup arrived short: %d of %d bytes", c.path, n, want)
	}
	return n, nil
}

// CheckStore runs the store's consistency check in the service and returns
// the problems found; none means healthy.
func (c *Client) CheckStore(ctx context.Context) ([]string, error) {
	var out checkBody
	if err := c.call(ctx, http.MethodPost, pathStoreCheck, struct{}{}, &out); err != nil {
		return nil, err
	}
	return out.Problems, nil
}
