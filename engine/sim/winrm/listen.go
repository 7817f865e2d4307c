package winrm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Start serves the simulator on addr (e.g. 127.0.0.1:0), over TLS when
// tlsConfig is set, and returns the WinRM URL (…/wsman). The server keeps
// track of its connections: NTLM state is forgotten when a connection
// closes, and SetDown can refuse connections. Close stops it.
func (s *Server) Start(addr string, tlsConfig *tls.Config) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	s.mu.Lock()
	s.addr, s.tlsConfig = l.Addr().String(), tlsConfig
	s.url = scheme + "://" + s.addr + "/wsman"
	s.mu.Unlock()
	s.serve(l)
	return s.URL(), nil
}

// serve starts an HTTP server on l.
func (s *Server) serve(l net.Listener) {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.ConnState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	tlsConfig := s.tlsConfig
	s.httpSrv, s.listener = srv, l
	s.mu.Unlock()
	if tlsConfig != nil {
		srv.TLSConfig = tlsConfig.Clone()
		l = tls.NewListener(l, srv.TLSConfig)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Debug("winrm simulator stopped serving", "error", err)
		}
	}()
}

// URL returns the WinRM URL Start serves, or "" before Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Addr returns the host:port Start serves on, or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// SetDown takes a started server down (true): it stops listening, so new
// connections are refused, and drops every open connection, as a server
// that crashed or lost its network would. SetDown(false) listens again on
// the same address. Shells and commands survive, as they would on a
// server whose network came back.
func (s *Server) SetDown(down bool) error {
	s.mu.Lock()
	srv, addr := s.httpSrv, s.addr
	s.mu.Unlock()
	if addr == "" {
		return errors.New("SetDown needs a server started with Start")
	}
	if down {
		if srv == nil {
			return nil
		}
		s.mu.Lock()
		l := s.listener
		s.httpSrv, s.listener = nil, nil
		s.mu.Unlock()
		// Close the listener here too: Serve may not have taken it yet, and
		// connections queued on it would be reset rather than refused.
		_ = l.Close()
		err := srv.Close() // closes every connection
		s.log.Debug("winrm simulator down", "addr", addr)
		if errors.Is(err, net.ErrClosed) {
			err = nil // the listener closed above
		}
		return err
	}
	if srv != nil {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", addr, err)
	}
	s.serve(l)
	s.log.Debug("winrm simulator up", "addr", addr)
	return nil
}

// ConnState is the http.Server hook that forgets a connection's NTLM
// state when it closes. Start installs it; a caller serving the Server
// with its own http.Server may install it too.
func (s *Server) ConnState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateClosed, http.StateHijacked:
		s.forgetConn(c.RemoteAddr().String())
	}
}

// shutdown stops a server Start started.
func (s *Server) shutdown() {
	s.mu.Lock()
	srv := s.httpSrv
	s.httpSrv, s.listener = nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}

// drain reads what is left of a request body, so that the connection can
// carry the next request (an NTLM handshake needs it to).
func drain(r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4<<20))
}

// dropConnection ends the request's connection without an answer, with a
// TCP reset where the connection allows it: what the client sees when a
// server or a middlebox resets a connection mid-request.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // the server's own way to abort a response without an answer
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close with RST, not FIN
	}
	_ = conn.Close()
}
