package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"easgate/engine"
)

// Maintenance is what the service offers of its store besides the engine:
// *store.Store implements it.
type Maintenance interface {
	// Backup writes a consistent copy of the store to w.
	Backup(w io.Writer) (int64, error)
	// Check verifies the store; nil means healthy.
	Check() []error
}

// Config configures Listen.
type Config struct {
	// Socket is the socket's path.
	Socket string
	// Group, when set, is the group (name or gid) whose members may use the
	// socket besides the service's own user; the socket is then 0660.
	Group string
	// API is what the socket serves: the service's engine.
	API engine.API
	// Store is the store's maintenance; nil answers store calls with
	// ErrNoMaintenance.
	Store Maintenance
	// Version and StorePath fill in Info.
	Version   string
	StorePath string
	Logger    *slog.Logger
}

// Log attribute keys.
const (
	attrPath   = "path"
	attrMethod = "method"
	attrUser   = "user"
	attrUID    = "uid"
	attrPID    = "pid"
	attrErr    = "err"
	attrStatus = "status"
	attrTook   = "took"
	attrBytes  = "bytes"
)

// Server serves an engine.API on a Unix socket.
type Server struct {
	cfg     Config
	log     *slog.Logger
	policy  *policy
	l       *net.UnixListener
	path    string
	fi      fs.FileInfo // the socket file, to remove only our own
	http    *http.Server
	info    Info
	base    context.Context
	stop    context.CancelFunc
	closeMu sync.Mutex
	closed  bool
}

// Listen creates the socket (replacing a stale one) and returns the server;
// Serve answers on it.
func Listen(cfg Config) (*Server, error) {
	if cfg.API == nil {
		return nil, errors.New("control: no API to serve")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	path, err := filepath.Abs(cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", cfg.Socket, err)
	}
	pol := &policy{self: uint32(os.Geteuid()), groupsOf: groupIDs}
	gid := -1
	if cfg.Group != "" {
		g, err := lookupGroup(cfg.Group)
		if err != nil {
			return nil, err
		}
		pol.gid, pol.hasGroup, gid = g, true, int(g)
	}
	l, stale, err := listenUnix(path, socketMode(cfg.Group != ""), gid)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("subsystem", "control"), policy: pol, l: l, path: path, fi: fi,
		info: Info{Service: serviceName, Version: cfg.Version, PID: os.Getpid(), Store: cfg.StorePath, Started: time.Now().UTC()}}
	s.base, s.stop = context.WithCancel(context.Background())
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, s.policy.identify(c))
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if stale {
		s.log.Warn("replaced a stale control socket", attrPath, path)
	}
	if _, err := peerCredentials(nil); errors.Is(err, errNoPeerCredentials) {
		s.log.Warn("peer credentials are not available on this platform: the socket's file permissions alone decide who may connect", attrPath, path)
	}
	s.log.Info("control socket listening", attrPath, path, "group", cfg.Group)
	return s, nil
}

// Path returns the socket's absolute path.
func (s *Server) Path() string { return s.path }

// Serve answers connections until Close; it then returns nil.
func (s *Server) Serve() error {
	err := s.http.Serve(s.l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close ends every call and event stream, waits up to ctx for the handlers
// to return, and removes the socket file.
func (s *Server) Close(ctx context.Context) error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.stop()
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.http.Close())
	}
	if rerr := removeIfSame(s.path, s.fi); rerr != nil {
		err = errors.Join(err, fmt.Errorf("remove control socket: %w", rerr))
	}
	s.log.Info("control socket closed", attrPath, s.path)
	return err
}

type peerKey struct{}

func peerOf(r *http.Request) *peer {
	if p, ok := r.Context().Value(peerKey{}).(*peer); ok {
		return p
	}
	return &peer{name: "unknown", denied: fmt.Errorf("%w: no peer", ErrForbidden)}
}

func (s *Server) routes() http.Handler {
	api := s.cfg.API
	mux := http.NewServeMux()
	get := func(path string, h http.HandlerFunc) { mux.HandleFunc("GET "+path, h) }
	post := func(path string, h http.HandlerFunc) { mux.HandleFunc("POST "+path, h) }

	get(pathPing, func(w http.ResponseWriter, r *http.Request) {
		in := s.info
		in.User = peerOf(r).name
		writeJSON(w, http.StatusOK, in)
	})
	get(pathStatus, read(s, func(ctx context.Context, _ struct{}) (any, error) { return api.Status(ctx) }))
	post(pathDevices, read(s, func(ctx context.Context, q engine.DeviceQuery) (any, error) { return array(api.Devices(ctx, q)) }))
	post(pathDevice, read(s, func(ctx context.Context, b deviceBody) (any, error) { return api.Device(ctx, b.Device) }))
	post(pathRuns, read(s, func(ctx context.Context, b limitBody) (any, error) { return array(api.Runs(ctx, b.Limit)) }))
	post(pathJournal, read(s, func(ctx context.Context, q engine.JournalQuery) (any, error) { return array(api.Journal(ctx, q)) }))
	post(pathRunDetail, read(s, func(ctx context.Context, b idBody) (any, error) { return api.RunDetail(ctx, b.ID) }))
	post(pathCandidates, read(s, func(ctx context.Context, b deviceBody) (any, error) { return api.Candidates(ctx, b.Device) }))
	post(pathLogs, read(s, func(ctx context.Context, b limitBody) (any, error) { return api.Logs(ctx, b.Limit) }))
	post(pathPreview, read(s, func(ctx context.Context, b deviceBody) (any, error) { return api.Preview(ctx, b.Device) }))
	post(pathStatistics, read(s, func(ctx context.Context, b deviceBody) (any, error) { return api.Statistics(ctx, b.Device) }))

	// Calls that act: the caller's claimed actor is replaced with its OS user.
	post(pathSync, act(s, func(ctx context.Context, who string, q engine.SyncRequest) (any, error) {
		q.Actor = who
		return api.Sync(ctx, q)
	}))
	post(pathLink, act(s, func(ctx context.Context, who string, q engine.LinkRequest) (any, error) {
		q.Actor = who
		return nil, api.Link(ctx, q)
	}))
	post(pathUnlink, act(s, func(ctx context.Context, who string, q engine.DeviceRequest) (any, error) {
		q.Actor = who
		return nil, api.Unlink(ctx, q)
	}))
	post(pathResend, act(s, func(ctx context.Context, who string, q engine.ResendRequest) (any, error) {
		q.Actor = who
		return api.Resend(ctx, q)
	}))
	post(pathOverride, act(s, func(ctx context.Context, who string, q engine.OverrideRequest) (any, error) {
		q.Actor = who
		return nil, api.Override(ctx, q)
	}))
	post(pathRemove, act(s, func(ctx context.Context, who string, q engine.DeviceRequest) (any, error) {
		q.Actor = who
		return nil, api.RemovePartnership(ctx, q)
	}))
	post(pathWipe, act(s, func(ctx context.Context, who string, q engine.WipeRequest) (any, error) {
		q.Actor = who
		return nil, api.Wipe(ctx, q)
	}))
	post(pathApprove, act(s, func(ctx context.Context, who string, q engine.PlanRequest) (any, error) {
		q.Actor = who
		return api.Approve(ctx, q)
	}))
	post(pathDiscard, act(s, func(ctx context.Context, who string, q engine.PlanRequest) (any, error) {
		q.Actor = who
		return nil, api.Discard(ctx, q)
	}))
	post(pathCancel, act(s, func(ctx context.Context, who string, _ struct{}) (any, error) {
		return nil, api.Cancel(ctx, who)
	}))

	get(pathEvents, s.events)
	get(pathStoreBackup, s.backup)
	post(pathStoreCheck, read(s, func(ctx context.Context, _ struct{}) (any, error) {
		if s.cfg.Store == nil {
			return nil, ErrNoMaintenance
		}
		out := checkBody{Problems: []string{}}
		for _, p := range s.cfg.Store.Check() {
			out.Problems = append(out.Problems, p.Error())
		}
		return out, nil
	}))
	return s.guard(mux)
}

// guard answers 403 to a connection whose peer may not use the socket.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerOf(r)
		if p.denied != nil {
			s.log.Warn("control socket refused a caller", attrUID, p.uid, attrPID, p.pid, attrUser, p.name, attrErr, p.denied)
			writeError(w, p.denied)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// read wraps a call that only reads.
func read[Q any](s *Server, fn func(ctx context.Context, q Q) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var q Q
		if err := decodeBody(r, &q); err != nil {
			writeError(w, err)
			return
		}
		out, err := fn(r.Context(), q)
		if err != nil {
			s.log.Debug("control call failed", attrMethod, r.URL.Path, attrUser, peerOf(r).name, attrErr, err)
			writeError(w, err)
			return
		}
		if a, ok := out.(streamer); ok {
			a.stream(w)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// streamer is a result written element by element rather than encoded
// whole: a list of 150,000 device records is tens of megabytes of JSON.
type streamer interface {
	stream(w http.ResponseWriter)
}

// jsonArray streams a slice as a JSON array, announcing its length in a
// header so that the client can size its slice once.
type jsonArray[T any] []T

// array wraps a list result for streaming.
func array[T any](items []T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return jsonArray[T](items), nil
}

func (a jsonArray[T]) stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set(headerCount, strconv.Itoa(len(a)))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	_ = bw.WriteByte('[')
	for i := range a {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		if err := enc.Encode(&a[i]); err != nil {
			return // the caller went, or a value cannot be encoded: the client sees a cut array
		}
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

// act wraps a call that changes something; it is logged with who made it.
func act[Q any](s *Server, fn func(ctx context.Context, who string, q Q) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var q Q
		if err := decodeBody(r, &q); err != nil {
			writeError(w, err)
			return
		}
		p := peerOf(r)
		start := time.Now()
		s.log.Info("control call", attrMethod, r.URL.Path, attrUser, p.name, attrUID, p.uid, attrPID, p.pid)
		out, err := fn(r.Context(), p.name, q)
		if err != nil {
			s.log.Warn("control call failed", attrMethod, r.URL.Path, attrUser, p.name, attrErr, err, attrTook, time.Since(start))
			writeError(w, err)
			return
		}
		if out == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// events streams the engine's events as JSON lines until the caller goes,
// the engine stops, or the server closes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ch, err := s.cfg.API.Subscribe(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", contentNDJSON)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	enc := json.NewEncoder(w)
	for ev := range ch {
		if err := enc.Encode(ev); err != nil {
			return // the caller went; the subscription ends with r's context
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// backup streams the store's snapshot; the trailers say how it ended,
// since the status went out before the first byte.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Store == nil {
		writeError(w, ErrNoMaintenance)
		return
	}
	p := peerOf(r)
	w.Header().Set("Trailer", trailerBytes+", "+trailerError)
	w.Header().Set("Content-Type", contentBinary)
	w.WriteHeader(http.StatusOK)
	start := time.Now()
	n, err := s.cfg.Store.Backup(w)
	w.Header().Set(trailerBytes, strconv.FormatInt(n, 10))
	if err != nil {
		w.Header().Set(trailerError, err.Error())
		s.log.Error("store backup through the control socket failed", attrUser, p.name, attrErr, err)
		return
	}
	s.log.Info("store backed up through the control socket", attrUser, p.name, attrBytes, n, attrTook, time.Since(start))
}

// decodeBody reads a JSON body into q; an empty body leaves q zero.
func decodeBody(r *http.Request, q any) error {
	if r.Body == nil || r.Method == http.MethodGet {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxRequestBody))
	if err := dec.Decode(q); err != nil && !errors.Is(err, io.EOF) {
		return badRequest{fmt.Errorf("decode the request body: %w", err)}
	}
	return nil
}

// badRequest is a request the server could not read.
type badRequest struct{ error }

func (e badRequest) Unwrap() error { return e.error }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", contentJSON)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	status, body := encodeError(err)
	var br badRequest
	if errors.As(err, &br) {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, body)
}
