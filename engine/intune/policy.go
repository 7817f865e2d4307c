package intune

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
)

// requestPolicy replaces the SDK's retry handler. For every request it
//
//   - waits for the client's rate limiter (a sliding window under Graph's
//     per-app, per-tenant limit), also before each retry;
//   - retries 429, 503 and 504 after the Retry-After Graph sent, in seconds
//     (fractions honoured, where the SDK's handler truncates them) or as an
//     HTTP date, each wait capped at MaxRetryWait; without a Retry-After it
//     backs off exponentially from RetryBaseDelay with jitter; a 429 also
//     holds every other request of the client for as long;
//   - retries a GET that failed on the network (not a certificate the
//     client does not trust) with the same backoff;
//   - gives up after MaxRetries retries, or when the next wait would take
//     the request's total wait past RetryBudget, returning the last
//     response so that the caller reports Graph's own error;
//   - answers a 401 once by forcing a fresh token (Graph refused one the
//     token cache still holds: expired by Graph's clock, or revoked) and
//     sending the request again with it.
type requestPolicy struct {
	c *Client
}

var _ khttp.Middleware = (*requestPolicy)(nil)

// Intercept implements khttp.Middleware.
func (p *requestPolicy) Intercept(pipeline khttp.Pipeline, index int, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	cfg := p.c.cfg
	var waited time.Duration
	renewed := false
	retries := 0
	for {
		if err := p.c.limiter.wait(ctx); err != nil {
			return nil, err
		}
		resp, err := pipeline.Next(req, index)
		if err != nil {
			if !retryableNetError(ctx, req, err) || retries >= cfg.MaxRetries {
				return nil, err
			}
			d := backoff(cfg.RetryBaseDelay, cfg.MaxRetryWait, retries)
			if waited+d > cfg.RetryBudget {
				return nil, err
			}
			p.c.log.Warn("graph request failed; retrying", logKeyPath, req.URL.Path, logKeyAttempt, retries+1, logKeyWait, d, logKeyError, err)
			if err := sleep(ctx, d); err != nil {
				return nil, err
			}
			waited += d
			retries++
			if req, err = rewind(req); err != nil {
				return nil, err
			}
			continue
		}

		switch resp.StatusCode {
		case http.StatusUnauthorized:
			stale := bearer(req)
			if renewed || stale == "" {
				return resp, nil
			}
			renewed = true
			discard(resp)
			tok, err := p.c.tokens.renew(ctx, stale, p.c.tokenOpts)
			if err != nil {
				return nil, err
			}
			p.c.log.Info("graph refused the access token; renewed it", logKeyPath, req.URL.Path)
			if req, err = rewind(req); err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+tok.Token)
			continue
		case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if retries >= cfg.MaxRetries {
				return resp, nil
			}
			header := resp.Header.Get("Retry-After")
			d, ok := retryAfter(header, time.Now())
			if ok {
				d = min(d, cfg.MaxRetryWait)
			} else {
				d = backoff(cfg.RetryBaseDelay, cfg.MaxRetryWait, retries)
			}
			if waited+d > cfg.RetryBudget {
				return resp, nil
			}
			if resp.StatusCode == http.StatusTooManyRequests {
				// Graph throttles the application, not the request: every
				// other request of this client would be refused too.
				p.c.limiter.hold(time.Now().Add(d))
			}
			p.c.log.Warn("graph throttled or unavailable; retrying", logKeyPath, req.URL.Path, logKeyStatus, resp.StatusCode,
				logKeyRetry, oneLine(header, 40), logKeyWait, d, logKeyAttempt, retries+1)
			discard(resp)
			if err := sleep(ctx, d); err != nil {
				return nil, err
			}
			waited += d
			retries++
			var err error
			if req, err = rewind(req); err != nil {
				return nil, err
			}
			req.Header.Set("Retry-Attempt", strconv.Itoa(retries))
			continue
		}
		return resp, nil
	}
}

// retryAfter parses a Retry-After header: a number of seconds, possibly
// fractional ("0.5", as Graph sends), or an HTTP date. A date in the past
// or a negative number means now; a header that is neither is not ok.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(h, 64); err == nil {
		switch {
		case secs != secs: // NaN
			return 0, false
		case secs <= 0:
			return 0, true
		case secs > 24*3600:
			return 24 * time.Hour, true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// backoff is the wait before retry number n+1 without a Retry-After: base
// doubled n times, at most limit, of which a random half is jitter so that
// clients throttled together do not return together.
func backoff(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// retryableNetError reports whether a request that failed without a
// response may be sent again: an idempotent request, a network failure
// rather than the caller's context or an untrusted certificate.
func retryableNetError(ctx context.Context, req *http.Request, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrNoToken) || isTLSVerification(err) {
		return false
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// rewind returns a copy of the request to send again, with its body (if
// any) from the start; the copy's headers may be changed.
func rewind(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return r, nil
	}
	if req.GetBody == nil {
		return nil, errors.New("graph request body cannot be sent again")
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r.Body = body
	return r, nil
}

// bearer returns the request's bearer token, or "".
func bearer(req *http.Request) string {
	scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// discard drains a little of a response that will not be used and closes
// it, so that its connection can be reused.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
