package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"easgate/config"
	"easgate/control"
	"easgate/engine"
	"easgate/metrics"
)

// Log attribute keys of the service.
const (
	attrSocket  = "socket"
	attrMetrics = "metrics"
	attrStore   = "store"
	attrVersion = "version"
	attrReason  = "reason"
	attrErr     = "err"
	attrPID     = "pid"
	attrConfig  = "config"
)

// shutdownGrace bounds how long the control socket and the metrics endpoint
// wait for their calls to finish once the engine has stopped.
const shutdownGrace = 5 * time.Second

func newRunCmd(g *globals) *cobra.Command {
	var logFormat string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the headless service: schedule, control socket, metrics",
		Long: `Run easgate as a service: hold the store, run a full sync at start-up and then on the
schedule, serve the console and the CLI on the control socket (control.socket), and
Prometheus metrics on metrics.listen when set.

Logs are JSON lines in the config's log file (log.file), or on stdout when it is
empty. --log-format json|text writes them to stdout in that format instead, for
systemd's journal or a container runtime.

SIGTERM or SIGINT stops the service gracefully: the running sync starts no new
change, journals the ones in flight and is recorded as failed ("cancelled"); the
socket is removed and the store closed. The next start carries on from there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			explicit := cmd.Flags().Changed("log-format")
			if explicit && logFormat != "json" && logFormat != "text" {
				return usageError{fmt.Errorf("--log-format %q: want json or text", logFormat)}
			}
			cfg, err := loadConfig(g, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runService(cmd.Context(), cfg, serviceLog(cfg, logFormat, explicit, cmd.OutOrStdout()))
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "write logs to stdout as json or text (default: JSON to log.file)")
	return cmd
}

// serviceLog says where the service logs: JSON to the config's log file; to
// stdout when the config names none or the format was asked for.
func serviceLog(cfg *config.Config, format string, explicit bool, stdout io.Writer) logOptions {
	lo := logOptions{level: cfg.Log.Level, format: "json", w: stdout, ring: engine.NewLogRing(1000, slog.LevelInfo)}
	if explicit {
		lo.format = format
	} else {
		lo.file = cfg.Resolve(cfg.Log.File)
	}
	return lo
}

// runService runs until ctx ends (SIGTERM, SIGINT), then stops in order:
// the running sync, the schedule, the engine, the socket, the metrics
// endpoint, the store.
func runService(ctx context.Context, cfg *config.Config, lo logOptions) error {
	base, closeLog, err := openLogger(lo)
	if err != nil {
		return err
	}
	defer closeLog()
	log := base.With("subsystem", "service")
	bi := buildInfo()
	log.Info("service starting", attrVersion, bi.Version, attrPID, os.Getpid(), attrConfig, cfg.Path)

	var (
		m   *metrics.Metrics
		obs engine.CallObserver
	)
	if cfg.Metrics.Listen != "" {
		m = metrics.New(base)
		obs = m
	}
	a, err := openEngine(ctx, cfg, base, lo.ring, openSync, obs)
	if err != nil {
		log.Error("service cannot start", attrErr, err)
		return err
	}
	defer a.close()
	eng := a.engine
	storePath, _ := filepath.Abs(a.store.Path())

	var wg sync.WaitGroup
	defer wg.Wait()

	var srv *control.Server
	if p := cfg.Resolve(cfg.Control.Socket); p != "" {
		srv, err = control.Listen(control.Config{Socket: p, Group: cfg.Control.Group, API: eng, Store: a.store,
			Version: bi.Version, StorePath: storePath, Logger: base})
		if err != nil {
			log.Error("service cannot start", attrErr, err)
			return fmt.Errorf("control socket: %w", err)
		}
		wg.Go(func() {
			if err := srv.Serve(); err != nil {
				log.Error("control socket stopped", attrErr, err)
			}
		})
	} else {
		log.Warn("no control.socket configured: the console and the CLI cannot attach")
	}

	var metricsSrv *http.Server
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	metricsAddr := ""
	if m != nil {
		ln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			if srv != nil {
				_ = srv.Close(context.Background())
			}
			log.Error("service cannot start", attrErr, err)
			return fmt.Errorf("metrics.listen %s: %w", cfg.Metrics.Listen, err)
		}
		metricsAddr = ln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, "easgate: metrics at /metrics")
		})
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		wg.Go(func() {
			if err := metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics endpoint stopped", attrErr, err)
			}
		})
		wg.Go(func() {
			if err := m.Watch(watchCtx, eng); err != nil {
				log.Warn("metrics stopped following the engine", attrErr, err)
			}
		})
	}

	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServe()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = eng.Serve(serveCtx)
	}()
	socket := ""
	if srv != nil {
		socket = srv.Path()
	}
	log.Info("service ready", attrSocket, socket, attrMetrics, metricsAddr, attrStore, storePath)
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("cannot tell systemd the service is ready", attrErr, err)
	}

	<-ctx.Done()
	reason := "stopping"
	if c := context.Cause(ctx); c != nil {
		reason = c.Error()
	}
	log.Info("service stopping", attrReason, reason)
	_ = sdNotify("STOPPING=1")
	// The running sync starts no new change and is recorded as cancelled.
	if err := eng.Cancel(context.Background(), "easgate stopping: "+reason); err != nil && !errors.Is(err, engine.ErrNotFound) {
		log.Warn("cannot cancel the running sync", attrErr, err)
	}
	stopServe()
	<-served
	stopWatch()
	_ = eng.Close() // waits for the cancelled run to be recorded
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if srv != nil {
		if err := srv.Close(sctx); err != nil {
			log.Warn("control socket did not close cleanly", attrErr, err)
		}
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(sctx); err != nil {
			_ = metricsSrv.Close()
		}
	}
	wg.Wait()
	a.close()
	log.Info("service stopped")
	return nil
}

// sdNotify tells systemd about the service's state (Type=notify units),
// when it runs under systemd.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	return nil
}
