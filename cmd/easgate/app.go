package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"easgate/config"
	"easgate/control"
	"easgate/engine"
	"easgate/engine/intune"
	"easgate/engine/mailer"
	"easgate/store"
)

// app is what a command opened, closed in reverse by close. Either the
// command opened the store and embeds an engine (store and engine set), or it
// attached to a running service through its control socket (remote set).
// api is whichever of the two it got.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *store.Store
	engine *engine.Engine
	remote *control.Client
	api    engine.API
	closes []func() error
}

func (a *app) close() {
	for i := len(a.closes) - 1; i >= 0; i-- {
		_ = a.closes[i]()
	}
	a.closes = nil
}

// loadConfig reads the config the flags name and prints its warnings.
func loadConfig(g *globals, stderr io.Writer) (*config.Config, error) {
	cfg, warnings, err := config.Load(config.PathFrom(g.configPath))
	for _, w := range warnings {
		fmt.Fprintln(stderr, "easgate: warning:", w)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, usageError{fmt.Errorf("%w (pass --config FILE, set %s, or try `easgate demo`)", err, config.EnvConfig)}
		}
		return nil, err
	}
	return cfg, nil
}

// loadAttachable loads the config like loadConfig. When the config does not
// validate, typically because this user (an admin in control.group) cannot
// read the service's secret files, it still returns the config as decoded,
// with lite set: good enough to find and attach to the running service,
// which holds the secrets, but not to open anything else; err is then the
// validation error to report if no service answers.
func loadAttachable(g *globals, stderr io.Writer) (cfg *config.Config, lite bool, err error) {
	cfg, err = loadConfig(g, stderr)
	if err == nil || !errors.Is(err, config.ErrInvalid) {
		return cfg, false, err
	}
	path := config.PathFrom(g.configPath)
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		return nil, false, err
	}
	c := config.Default()
	if yaml.Unmarshal(data, c) != nil {
		return nil, false, err
	}
	c.Path = path
	return c, true, err
}

// logOptions say where logs go.
type logOptions struct {
	file   string    // the log file; "" logs to w
	w      io.Writer // used when file is ""
	level  string
	format string // text | json
	// ring, if set, also keeps the recent lines for the console's log view.
	ring *engine.LogRing
}

// openLogger returns a logger writing to the log file (or w).
func openLogger(o logOptions) (*slog.Logger, func() error, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.level)); err != nil {
		lvl = slog.LevelInfo
	}
	w, closeFn := o.w, func() error { return nil }
	if o.file != "" {
		f, err := os.OpenFile(o.file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		w, closeFn = f, f.Close
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if o.format == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	if o.ring != nil {
		h = slog.NewMultiHandler(h, o.ring)
	}
	return slog.New(h), closeFn, nil
}

// openStore opens the config's store. A store written by a newer easgate is
// a usage error (exit 2): nothing is wrong with it, this binary is too old.
func openStore(cfg *config.Config, log *slog.Logger, readOnly bool) (*store.Store, error) {
	st, err := store.Open(cfg.Resolve(cfg.Store), store.Options{Logger: log, ReadOnly: readOnly, LockTimeout: time.Second})
	if errors.Is(err, store.ErrNewerSchema) {
		return nil, usageError{err} // the store's message says what to do
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// adapters builds the Exchange, Intune and mail adapters from the config.
// obs, if not nil, is told about every remote call they make. closes
// releases what they hold (the Exchange client's open shells, Graph
// connections); call it after the engine has stopped.
func adapters(cfg *config.Config, log *slog.Logger, obs engine.CallObserver) (d engine.Deps, closes []func() error, err error) {
	defer func() {
		if err != nil {
			for _, c := range closes {
				_ = c()
			}
			closes = nil
		}
	}()
	ex, err := exchangeFromConfig(cfg, log, obs)
	if err != nil {
		return d, closes, err
	}
	closes = append(closes, ex.Close)
	d.Exchange, d.ExchangeWriter, d.ExchangeAdmin = ex, ex, ex

	ic, err := intuneConfig(cfg)
	if err != nil {
		return d, closes, err
	}
	ic.Observer = obs
	in, err := intune.New(ic, log.With("subsystem", "intune"))
	if errors.Is(err, intune.ErrConfig) {
		return d, closes, usageError{fmt.Errorf("intune: %w", err)}
	}
	if err != nil {
		return d, closes, fmt.Errorf("intune: %w", err)
	}
	closes = append(closes, func() error { in.Close(); return nil })
	d.Intune = in

	if n := cfg.Notify; n.Enabled {
		mc := mailer.Config{
			Host: n.SMTP.Host, Port: n.SMTP.Port, StartTLS: n.SMTP.StartTLS, Username: n.SMTP.Username,
			Password: n.SMTP.Password.Reveal(), From: n.From, EnrollmentURL: n.EnrollmentURL,
			TemplateFile: cfg.Resolve(n.TemplateFile), Observer: obs,
		}
		if n.SMTP.CAFile != "" {
			pem, err := cfg.ReadFile(n.SMTP.CAFile)
			if err != nil {
				return d, closes, err
			}
			mc.RootCAs = x509.NewCertPool()
			if !mc.RootCAs.AppendCertsFromPEM(pem) {
				return d, closes, fmt.Errorf("notify.smtp.ca_file %s holds no PEM certificate", n.SMTP.CAFile)
			}
		}
		m, err := mailer.New(mc, log.With("subsystem", "mailer"))
		switch {
		case errors.Is(err, mailer.ErrConfig): // its text starts with "notify:"
			return d, closes, usageError{err}
		case errors.Is(err, mailer.ErrTemplate):
			return d, closes, usageError{fmt.Errorf("notify: %w", err)}
		case err != nil:
			return d, closes, fmt.Errorf("notify: %w", err)
		}
		d.Mailer = m
	}
	return d, closes, nil
}

// engineOptions maps the config to the engine's options.
func engineOptions(cfg *config.Config, log *slog.Logger, readOnly bool) engine.Options {
	return engine.Options{
		Policy:          cfg.EnginePolicy(),
		ApplyParallel:   cfg.Exchange.Parallel,
		ApplyBatch:      cfg.Exchange.ApplyBatch,
		FullEvery:       cfg.Schedule.Full,
		QuickEvery:      cfg.Schedule.Quick,
		ExchangeServers: cfg.Exchange.Servers,
		ReadOnly:        readOnly,
		Logger:          log,
	}
}

// openMode says what a command needs.
type openMode int

const (
	openRead openMode = iota // the store, shared; no adapters
	openSync                 // the store, exclusive; every adapter
)

// open loads the config and opens what a command needs: when a service
// (easgate run) answers on the config's control socket, the command attaches
// to it; otherwise it opens the store and embeds an engine, logging to the
// config's log file.
func open(ctx context.Context, g *globals, stderr io.Writer, mode openMode) (*app, error) {
	cfg, lite, err := loadAttachable(g, stderr)
	if cfg == nil {
		return nil, err
	}
	a, dialErr := attach(ctx, cfg, mode)
	if a != nil {
		return a, nil
	}
	if lite {
		return nil, err
	}
	a, err = openWith(ctx, cfg, fileLog(cfg), mode)
	if err != nil && dialErr != nil && errors.Is(err, engine.ErrStoreInUse) {
		// The service holds the store and its socket would not have us.
		return nil, fmt.Errorf("%w; and its control socket: %v", err, dialErr)
	}
	return a, err
}

// attachTimeout bounds the first exchange with a service's socket.
const attachTimeout = 5 * time.Second

// attach connects to the service on the config's control socket. It
// returns nil and no error when no service runs, and nil and the reason when
// a service runs but would not have this user (the caller then tries the
// store, which that service holds).
func attach(ctx context.Context, cfg *config.Config, mode openMode) (*app, error) {
	path := cfg.Resolve(cfg.Control.Socket)
	if path == "" {
		return nil, nil
	}
	dctx, cancel := context.WithTimeout(ctx, attachTimeout)
	defer cancel()
	c, err := control.Dial(dctx, path)
	if errors.Is(err, control.ErrNoService) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if want, err := filepath.Abs(cfg.Resolve(cfg.Store)); err == nil && c.Info().Store != "" && c.Info().Store != want {
		_ = c.Close()
		return nil, fmt.Errorf("control socket %s belongs to the service of store %s, not %s", path, c.Info().Store, want)
	}
	a := &app{cfg: cfg, log: slog.New(slog.DiscardHandler), remote: c, api: c}
	if mode == openRead {
		a.api = c.ReadOnly()
	}
	a.closes = append(a.closes, c.Close)
	return a, nil
}

// fileLog logs to the config's log file, keeping recent lines for the
// console. Without a log file (a service that logs to the journal), a
// command keeps only those recent lines: the console owns the terminal.
func fileLog(cfg *config.Config) logOptions {
	return logOptions{file: cfg.Resolve(cfg.Log.File), w: io.Discard, level: cfg.Log.Level, ring: engine.NewLogRing(1000, slog.LevelInfo)}
}

// openWith opens the store and embeds an engine, never attaching to a
// service. Logs go where lo says.
func openWith(ctx context.Context, cfg *config.Config, lo logOptions, mode openMode) (*app, error) {
	log, closeLog, err := openLogger(lo)
	if err != nil {
		return nil, err
	}
	a, err := openEngine(ctx, cfg, log, lo.ring, mode, nil)
	if err != nil {
		_ = closeLog()
		return nil, err
	}
	a.closes = append([]func() error{closeLog}, a.closes...) // closed last
	return a, nil
}

// openEngine opens the store and starts an engine on it, logging to log
// (and ring, for the console's log view, when set); obs, when not nil, is
// told about every remote call the adapters make.
func openEngine(ctx context.Context, cfg *config.Config, log *slog.Logger, ring *engine.LogRing, mode openMode, obs engine.CallObserver) (*app, error) {
	a := &app{cfg: cfg, log: log}
	st, err := openStore(cfg, log, mode == openRead)
	if err != nil {
		a.close()
		return nil, err
	}
	a.store = st
	a.closes = append(a.closes, st.Close)
	deps := engine.Deps{Store: st}
	if mode == openSync {
		ad, closes, err := adapters(cfg, log, obs)
		if err != nil {
			a.close()
			return nil, err
		}
		a.closes = append(a.closes, closes...)
		ad.Store = st
		deps = ad
	}
	opts := engineOptions(cfg, log, mode == openRead)
	opts.LogRing = ring
	eng, err := engine.New(deps, opts)
	if err != nil {
		a.close()
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		a.close()
		return nil, err
	}
	a.engine, a.api = eng, eng
	a.closes = append(a.closes, eng.Close)
	return a, nil
}

// withAPI opens easgate for a command and hands it the API: the embedded
// engine's, or a running service's through its control socket.
func withAPI(cmd *cobra.Command, g *globals, mode openMode, fn func(api engine.API) error) error {
	a, err := open(cmd.Context(), g, cmd.ErrOrStderr(), mode)
	if err != nil {
		return err
	}
	defer a.close()
	return fn(a.api)
}

// actor names the OS user for the journal.
func actor() string {
	u, err := user.Current()
	if err != nil {
		return fmt.Sprintf("uid %d", os.Getuid())
	}
	return strings.TrimSpace(u.Username)
}
