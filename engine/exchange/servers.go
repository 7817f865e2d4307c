package exchange

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/masterzen/winrm"

	"easgate/engine"
)

// server is one configured Exchange server: its WinRM endpoint and
// authentication, the shells kept open for the next command, and its
// health.
type server struct {
	c        *Client
	name     string // as configured
	host     string
	url      string
	endpoint *winrm.Endpoint
	auth     authenticator

	mu       sync.Mutex
	idle     []*pooledShell
	janitor  *time.Timer
	health   engine.Health
	lastFail error
	// undeleted are shells whose Delete failed (the server was down or
	// failing): Windows keeps such a shell, counting against the user's
	// quota of 30, until its idle timeout of hours, so they are deleted
	// again once the server answers.
	undeleted []*pooledShell
}

// maxUndeleted bounds the shells kept for another Delete.
const maxUndeleted = 64

func newServer(c *Client, ep endpoint, auth authenticator) *server {
	scheme := "http"
	if c.cfg.HTTPS {
		scheme = "https"
	}
	return &server{
		c: c, name: ep.name, host: ep.host, auth: auth,
		url:      scheme + "://" + net.JoinHostPort(ep.host, strconv.Itoa(ep.port)) + "/wsman",
		endpoint: winrm.NewEndpoint(ep.host, ep.port, c.cfg.HTTPS, c.cfg.InsecureSkipVerify, nil, nil, nil, c.cfg.ResponseTimeout),
		health:   engine.Health{Name: ep.name},
	}
}

// pooledShell is a WinRM shell on a server with the client and transport
// that talk to it. It runs one command at a time.
type pooledShell struct {
	srv       *server
	client    *winrm.Client
	tr        *transport
	shell     *winrm.Shell
	idleSince time.Time
}

// acquire returns an idle shell of the server, or opens one. reused says
// which.
func (s *server) acquire(ctx context.Context) (sh *pooledShell, reused bool, err error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		sh = s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		sh.tr.bind(ctx)
		return sh, true, nil
	}
	s.mu.Unlock()
	sh, err = s.open(ctx)
	return sh, false, err
}

// open creates a shell. Parameters come from NewParameters:
// DefaultParameters is shared by every user of the library.
func (s *server) open(ctx context.Context) (*pooledShell, error) {
	tr := &transport{srv: s, ctx: ctx}
	params := winrm.NewParameters(fmt.Sprintf("PT%dS", int(s.c.cfg.OperationTimeout/time.Second)), "en-US", s.c.cfg.EnvelopeSize)
	params.TransportDecorator = func() winrm.Transporter { return tr }
	client, err := winrm.NewClientWithParameters(s.endpoint, s.c.cfg.Username, s.c.cfg.Password, params)
	if err != nil {
		return nil, fmt.Errorf("winrm client for %s: %w", s.name, err)
	}
	shell, err := client.CreateShell()
	if err != nil {
		return nil, fmt.Errorf("open a shell on %s: %w", s.name, ctxErr(ctx, err))
	}
	return &pooledShell{srv: s, client: client, tr: tr, shell: shell}, nil
}

// release keeps a shell whose command ended cleanly for the next command,
// for ShellIdle at most; a closed client deletes it at once.
func (s *server) release(sh *pooledShell) {
	sh.tr.bind(context.Background())
	s.mu.Lock()
	if len(s.undeleted) > 0 && !s.c.isClosed() {
		s.c.background(s.deleteUndeleted) // the server answers again
	}
	if s.c.isClosed() || s.c.cfg.ShellIdle <= 0 || len(s.idle) >= s.c.cfg.Parallel {
		s.mu.Unlock()
		sh.destroy()
		return
	}
	sh.idleSince = time.Now()
	s.idle = append(s.idle, sh)
	if s.janitor == nil {
		s.janitor = time.AfterFunc(s.c.cfg.ShellIdle, s.reap)
	}
	s.mu.Unlock()
}

// reap deletes the shells idle for ShellIdle, and comes back for the rest.
func (s *server) reap() {
	s.mu.Lock()
	var old, kept []*pooledShell
	for _, sh := range s.idle {
		if time.Since(sh.idleSince) >= s.c.cfg.ShellIdle {
			old = append(old, sh)
		} else {
			kept = append(kept, sh)
		}
	}
	s.idle = kept
	s.janitor = nil
	if len(kept) > 0 {
		s.janitor = time.AfterFunc(s.c.cfg.ShellIdle-time.Since(kept[0].idleSince), s.reap)
	}
	s.mu.Unlock()
	for _, sh := range old {
		sh.destroy()
	}
}

// closeIdle deletes every idle shell and closes idle connections.
func (s *server) closeIdle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	if s.janitor != nil {
		s.janitor.Stop()
		s.janitor = nil
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sh := range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh.destroy()
		}()
	}
	wg.Wait()
	s.deleteUndeleted()
	s.auth.closeIdle()
}

// deleteUndeleted tries once more to delete the shells whose Delete
// failed; one that fails again is kept for the next try.
func (s *server) deleteUndeleted() {
	s.mu.Lock()
	left := s.undeleted
	s.undeleted = nil
	s.mu.Unlock()
	for _, sh := range left {
		sh.tr.bind(context.Background())
		sh.destroy()
	}
}

// keepUndeleted keeps a shell whose Delete failed with err for another
// try, unless the server said it no longer has it.
func (s *server) keepUndeleted(sh *pooledShell, err error) {
	var f *FaultError
	if errors.As(err, &f) && f.Subcode == "w:InvalidSelectors" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.undeleted) < maxUndeleted {
		s.undeleted = append(s.undeleted, sh)
	}
}

// destroy deletes the shell on the server, with a context of its own, so
// that it goes out even when the command's context was cancelled.
func (sh *pooledShell) destroy() {
	sh.tr.detach()
	defer sh.tr.close()
	if err := sh.shell.Close(); err != nil {
		sh.srv.c.log.Debug("delete shell failed", logServer, sh.srv.name, logError, err)
		sh.srv.keepUndeleted(sh, err)
	}
}

// coolingUntil returns when the server's cool-down ends; zero when it is
// not cooling down.
func (s *server) coolingUntil(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.health.CoolDownUntil) {
		return s.health.CoolDownUntil
	}
	return time.Time{}
}

// failed records a failure to connect, which starts a cool-down.
func (s *server) failed(err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health.LastCall, s.health.OK, s.health.Error = now, false, err.Error()
	s.health.CoolDownUntil = now.Add(s.c.cfg.CoolDown)
	s.lastFail = err
}

// answered records a call the server took: its command ran, well or not.
func (s *server) answered(err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health.LastCall, s.health.OK, s.health.Error = now, err == nil, ""
	if err != nil {
		s.health.Error = err.Error()
	}
	s.health.CoolDownUntil = time.Time{}
}

// Health returns the state of every configured server, in failover order:
// which one the last call used, whether its last call went well, and when
// a server that could not be reached will be tried again. The engine
// calls it after each inventory.
func (c *Client) Health() []engine.Health {
	c.mu.Lock()
	active := c.active
	c.mu.Unlock()
	out := make([]engine.Health, 0, len(c.servers))
	for _, s := range c.servers {
		s.mu.Lock()
		h := s.health
		s.mu.Unlock()
		h.InUse = s == active
		out = append(out, h)
	}
	return out
}

// order returns the servers to try, in failover order: those not cooling
// down; when every one is, all of them, soonest back first.
func (c *Client) order() []*server {
	now := time.Now()
	var ready, cooling []*server
	for _, s := range c.servers {
		if s.coolingUntil(now).IsZero() {
			ready = append(ready, s)
		} else {
			cooling = append(cooling, s)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	// Stable: servers cooling down until the same time keep their order.
	for i := 1; i < len(cooling); i++ {
		for j := i; j > 0 && cooling[j].coolingUntil(now).Before(cooling[j-1].coolingUntil(now)); j-- {
			cooling[j], cooling[j-1] = cooling[j-1], cooling[j]
		}
	}
	return cooling
}

// allFailed is the error of a call no server could take.
type allFailed struct{ errs []error }

func (e *allFailed) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	return "no Exchange server could be reached: " + strings.Join(parts, "; ")
}

func (e *allFailed) Unwrap() []error { return e.errs }
