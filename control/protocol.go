package control

import (
	"context"
	"errors"
	"net/http"
	"time"

	"easgate/engine"
)

// Paths of the protocol (doc.go lists them with their bodies).
const (
	pathPing        = "/v1/ping"
	pathStatus      = "/v1/status"
	pathDevices     = "/v1/devices"
	pathDevice      = "/v1/device"
	pathRuns        = "/v1/runs"
	pathJournal     = "/v1/journal"
	pathSync        = "/v1/sync"
	pathEvents      = "/v1/events"
	pathRunDetail   = "/v1/run-detail"
	pathCandidates  = "/v1/candidates"
	pathLogs        = "/v1/logs"
	pathLink        = "/v1/link"
	pathUnlink      = "/v1/unlink"
	pathResend      = "/v1/resend"
	pathPreview     = "/v1/preview"
	pathOverride    = "/v1/override"
	pathRemove      = "/v1/remove-partnership"
	pathWipe        = "/v1/wipe"
	pathStatistics  = "/v1/statistics"
	pathApprove     = "/v1/approve"
	pathDiscard     = "/v1/discard"
	pathCancel      = "/v1/cancel"
	pathStoreBackup = "/v1/store/backup"
	pathStoreCheck  = "/v1/store/check"
)

// Trailers of a backup response.
const (
	trailerBytes = "Easgate-Backup-Bytes"
	trailerError = "Easgate-Error"
)

// headerCount carries the length of a streamed list.
const headerCount = "Easgate-Count"

// Content types.
const (
	contentJSON   = "application/json"
	contentNDJSON = "application/x-ndjson"
	contentBinary = "application/octet-stream"
)

// maxRequestBody bounds a request body; the largest is a resend naming
// many devices.
const maxRequestBody = 8 << 20

// Info describes the service behind a socket.
type Info struct {
	// Service is always "easgate"; it tells a stray socket from ours.
	Service string `json:"service"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// Store is the absolute path of the store the service holds.
	Store   string    `json:"store"`
	Started time.Time `json:"started"`
	// User is the caller's OS user name as the service sees it: the name
	// the journal records for the caller's actions.
	User string `json:"user"`
}

// serviceName is Info.Service.
const serviceName = "easgate"

// The request bodies that are not engine types.
type (
	deviceBody struct {
		Device engine.DeviceKey `json:"device"`
	}
	limitBody struct {
		Limit int `json:"limit"`
	}
	idBody struct {
		ID string `json:"id"`
	}
	checkBody struct {
		Problems []string `json:"problems"`
	}
)

// wireError is a failed call's body.
type wireError struct {
	Error struct {
		Message string   `json:"message"`
		Codes   []string `json:"codes,omitempty"`
	} `json:"error"`
}

// sentinels are the errors whose identity crosses the socket, by code.
var sentinels = []struct {
	code   string
	err    error
	status int
}{
	{"stale-plan", engine.ErrStalePlan, http.StatusConflict},
	{"stale-serial", engine.ErrStaleSerial, http.StatusConflict},
	{"no-held-plan", engine.ErrNoHeldPlan, http.StatusConflict},
	{"braked", engine.ErrBraked, http.StatusConflict},
	{"store-in-use", engine.ErrStoreInUse, http.StatusConflict},
	{"not-found", engine.ErrNotFound, http.StatusNotFound},
	{"group-not-found", engine.ErrGroupNotFound, http.StatusNotFound},
	{"read-only", engine.ErrReadOnly, http.StatusForbidden},
	{"forbidden", ErrForbidden, http.StatusForbidden},
	{"closed", engine.ErrClosed, http.StatusServiceUnavailable},
	{"unavailable", engine.ErrUnavailable, http.StatusServiceUnavailable},
	{"no-maintenance", ErrNoMaintenance, http.StatusServiceUnavailable},
	{"canceled", context.Canceled, http.StatusServiceUnavailable},
	{"deadline-exceeded", context.DeadlineExceeded, http.StatusGatewayTimeout},
}

// encodeError returns the status and body that carry err.
func encodeError(err error) (int, wireError) {
	var w wireError
	w.Error.Message = err.Error()
	status := http.StatusInternalServerError
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			if len(w.Error.Codes) == 0 {
				status = s.status
			}
			w.Error.Codes = append(w.Error.Codes, s.code)
		}
	}
	return status, w
}

// RemoteError is an error the service returned. It wraps the sentinels the
// server-side error wrapped, so errors.Is works as it would in-process.
type RemoteError struct {
	// Status is the HTTP status the service answered.
	Status  int
	Message string
	wrapped []error
}

// Error returns the service's message.
func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the engine sentinels the service's error wrapped.
func (e *RemoteError) Unwrap() []error { return e.wrapped }

// decodeError rebuilds the error a response carries.
func decodeError(status int, w wireError) error {
	e := &RemoteError{Status: status, Message: w.Error.Message}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	for _, c := range w.Error.Codes {
		for _, s := range sentinels {
			if s.code == c {
				e.wrapped = append(e.wrapped, s.err)
			}
		}
	}
	return e
}
