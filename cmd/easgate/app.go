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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"easgate/config"
	"easgate/engine"
	"easgate/engine/exchange"
	"easgate/engine/intune"
	"easgate/engine/mailer"
	"easgate/store"
)

// app is what a command opened, closed in reverse by close.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *store.Store
	engine *engine.Engine
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

// openStore opens the config's store.
func openStore(cfg *config.Config, log *slog.Logger, readOnly bool) (*store.Store, error) {
	st, err := store.Open(cfg.Resolve(cfg.Store), store.Options{Logger: log, ReadOnly: readOnly, LockTimeout: time.Second})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// adapters builds the Exchange, Intune and mail adapters from the config.
func adapters(cfg *config.Config, log *slog.Logger) (engine.Deps, error) {
	var d engine.Deps
	x := cfg.Exchange
	var caPEM []byte
	if x.CAFile != "" {
		b, err := cfg.ReadFile(x.CAFile)
		if err != nil {
			return d, err
		}
		caPEM = b
	}
	ex, err := exchange.New(exchange.Config{
		Servers: x.Servers, Port: x.Port, HTTPS: x.HTTPS, Auth: x.Auth, Username: x.Username,
		Password: x.Password.Reveal(), CAPEM: caPEM, InsecureSkipVerify: x.InsecureSkipVerify,
		Session: x.Session, Parallel: x.Parallel, AllowInsecureTransport: x.AllowInsecureTransport,
	}, log.With("subsystem", "exchange"))
	if err != nil {
		return d, fmt.Errorf("exchange: %w", err)
	}
	d.Exchange, d.ExchangeWriter = ex, ex
	if adm, ok := any(ex).(engine.ExchangeAdmin); ok {
		d.ExchangeAdmin = adm
	}

	in := cfg.Intune
	var graphCA []byte
	if in.CAFile != "" {
		if graphCA, err = cfg.ReadFile(in.CAFile); err != nil {
			return d, err
		}
	}
	ic, err := intune.New(intune.Config{
		TenantID: in.TenantID, ClientID: in.ClientID, ClientSecret: in.ClientSecret.Reveal(),
		CertificateFile: cfg.Resolve(in.CertificateFile), GraphURL: in.GraphURL, AuthorityURL: in.AuthorityURL, CAPEM: graphCA,
	}, log.With("subsystem", "intune"))
	if err != nil {
		return d, fmt.Errorf("intune: %w", err)
	}
	d.Intune = ic

	if n := cfg.Notify; n.Enabled {
		mc := mailer.Config{
			Host: n.SMTP.Host, Port: n.SMTP.Port, StartTLS: n.SMTP.StartTLS, Username: n.SMTP.Username,
			Password: n.SMTP.Password.Reveal(), From: n.From, EnrollmentURL: n.EnrollmentURL,
			TemplateFile: cfg.Resolve(n.TemplateFile),
		}
		if n.SMTP.CAFile != "" {
			pem, err := cfg.ReadFile(n.SMTP.CAFile)
			if err != nil {
				return d, err
			}
			mc.RootCAs = x509.NewCertPool()
			if !mc.RootCAs.AppendCertsFromPEM(pem) {
				return d, fmt.Errorf("notify.smtp.ca_file %s holds no PEM certificate", n.SMTP.CAFile)
			}
		}
		m, err := mailer.New(mc, log.With("subsystem", "mailer"))
		if err != nil {
			return d, fmt.Errorf("notify: %w", err)
		}
		d.Mailer = m
	}
	return d, nil
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

// open loads the config and opens what a command needs. Logs go to the
// config's log file.
func open(ctx context.Context, g *globals, stderr io.Writer, mode openMode) (*app, error) {
	cfg, err := loadConfig(g, stderr)
	if err != nil {
		return nil, err
	}
	return openWith(ctx, cfg, fileLog(cfg), mode)
}

// fileLog logs to the config's log file, keeping recent lines for the
// console.
func fileLog(cfg *config.Config) logOptions {
	return logOptions{file: cfg.Resolve(cfg.Log.File), level: cfg.Log.Level, ring: engine.NewLogRing(1000, slog.LevelInfo)}
}

func openWith(ctx context.Context, cfg *config.Config, lo logOptions, mode openMode) (*app, error) {
	a := &app{cfg: cfg}
	log, closeLog, err := openLogger(lo)
	if err != nil {
		return nil, err
	}
	a.log = log
	a.closes = append(a.closes, closeLog)
	st, err := openStore(cfg, log, mode == openRead)
	if err != nil {
		a.close()
		return nil, err
	}
	a.store = st
	a.closes = append(a.closes, st.Close)
	deps := engine.Deps{Store: st}
	if mode == openSync {
		ad, err := adapters(cfg, log)
		if err != nil {
			a.close()
			return nil, err
		}
		ad.Store = st
		deps = ad
	}
	opts := engineOptions(cfg, log, mode == openRead)
	opts.LogRing = lo.ring
	eng, err := engine.New(deps, opts)
	if err != nil {
		a.close()
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		a.close()
		return nil, err
	}
	a.engine = eng
	a.closes = append(a.closes, eng.Close)
	return a, nil
}

// withAPI opens easgate for a command and hands it the engine's API.
func withAPI(cmd *cobra.Command, g *globals, mode openMode, fn func(api engine.API) error) error {
	a, err := open(cmd.Context(), g, cmd.ErrOrStderr(), mode)
	if err != nil {
		return err
	}
	defer a.close()
	return fn(a.engine)
}

// actor names the OS user for the journal.
func actor() string {
	u, err := user.Current()
	if err != nil {
		return fmt.Sprintf("uid %d", os.Getuid())
	}
	return strings.TrimSpace(u.Username)
}
