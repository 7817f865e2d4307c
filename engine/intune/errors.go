package intune

import "errors"

// ErrConfig is returned by New for a configuration it cannot use.
var ErrConfig = errors.New("invalid intune configuration")

// ErrNoToken is returned when a request to Graph would have gone out
// without an access token: the SDK's authentication provider silently
// sends none to a host outside its allowed hosts, so the adapter refuses
// such a request instead.
var ErrNoToken = errors.New("graph request without an access token")

// ErrAuthentication is returned when no access token could be obtained from
// the authority (wrong secret, unknown application or tenant, unreachable
// authority).
var ErrAuthentication = errors.New("cannot get an access token")

// ErrUnauthorized is returned when Graph refuses the access token (401).
var ErrUnauthorized = errors.New("graph refused the access token")

// ErrForbidden is returned when the application lacks a permission (403).
var ErrForbidden = errors.New("graph permission missing")

// ErrThrottled is returned when Graph still throttles (429) after the
// retries.
var ErrThrottled = errors.New("graph throttled the request")

// ErrUnavailable is returned when Graph answers 5xx after the retries.
var ErrUnavailable = errors.New("graph unavailable")

// ErrBadResponse is returned for a response body that is not the JSON
// collection Graph documents.
var ErrBadResponse = errors.New("malformed graph response")
