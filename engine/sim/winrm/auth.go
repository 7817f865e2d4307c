package winrm

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// connAuth is the authentication state of one TCP connection: a challenge
// sent and not yet answered, or the user the connection authenticated as.
type connAuth struct {
	challenge [8]byte
	pending   bool
	user      string
	touched   time.Time
}

// maxConnStates bounds the per-connection table when the server is served
// without its ConnState hook (which forgets closed connections).
const maxConnStates = 4096

// authOutcome is what authenticate decided.
type authOutcome struct {
	user string
	ok   bool
	// negotiate is the WWW-Authenticate value of an NTLM challenge, sent
	// with the 401 that carries it; empty for a refusal.
	negotiate string
}

// authenticate checks a request's credentials: Basic (user and password,
// in constant time), NTLM inside Negotiate (a handshake bound to the TCP
// connection), or none on a connection NTLM already authenticated.
func (s *Server) authenticate(r *http.Request) authOutcome {
	conn := r.RemoteAddr
	h := r.Header.Get("Authorization")
	if h == "" {
		if user := s.connUser(conn); user != "" {
			return authOutcome{user: user, ok: true}
		}
		return authOutcome{}
	}
	scheme, token, decoded := authScheme(h)
	switch strings.ToLower(scheme) {
	case "basic":
		if s.cfg.DisableBasic {
			return authOutcome{}
		}
		return s.basic(r)
	case "negotiate", "ntlm":
		if s.cfg.DisableNegotiate || !decoded {
			return authOutcome{}
		}
		typ, err := ntlmMessageType(token)
		if err != nil {
			return authOutcome{} // a Kerberos or SPNEGO token: the simulator has no KDC
		}
		switch typ {
		case ntlmNegotiate:
			msg, challenge := challengeMessage(s.cfg.Domain, s.cfg.Hostname, time.Now())
			s.setConn(conn, &connAuth{challenge: challenge, pending: true})
			return authOutcome{negotiate: scheme + " " + base64.StdEncoding.EncodeToString(msg)}
		case ntlmAuthenticate:
			return s.ntlmAuthenticate(conn, token)
		}
	}
	return authOutcome{}
}

// basic checks Basic credentials in constant time.
func (s *Server) basic(r *http.Request) authOutcome {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return authOutcome{}
	}
	want, known := s.cfg.Users[user]
	if !known {
		// Compare anyway so unknown users take as long as wrong passwords.
		subtle.ConstantTimeCompare([]byte(pass), []byte(pass+"x"))
		return authOutcome{}
	}
	if subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		return authOutcome{}
	}
	return authOutcome{user: user, ok: true}
}

// ntlmAuthenticate verifies an AUTHENTICATE_MESSAGE against the challenge
// sent on the same connection. A challenge is used once.
func (s *Server) ntlmAuthenticate(conn string, token []byte) authOutcome {
	s.authMu.Lock()
	st := s.conns[conn]
	var challenge [8]byte
	pending := st != nil && st.pending
	if pending {
		challenge = st.challenge
		st.pending = false
	}
	s.authMu.Unlock()
	if !pending {
		return authOutcome{} // no challenge on this connection: a handshake split across connections fails
	}
	m, err := parseAuthenticate(token)
	if err != nil {
		return authOutcome{}
	}
	user, password, known := s.lookupNTLM(m.domain, m.user)
	if !known {
		verifyNTLMv2(m, m.user, challenge) // as long as a wrong password takes
		return authOutcome{}
	}
	if !verifyNTLMv2(m, password, challenge) {
		return authOutcome{}
	}
	s.setConn(conn, &connAuth{user: user})
	s.ntlmLogons.Add(1)
	return authOutcome{user: user, ok: true}
}

// lookupNTLM finds the account an NTLM logon names: DOMAIN\user, or the
// bare user name, in any case, as Windows compares account names.
func (s *Server) lookupNTLM(domain, user string) (name, password string, ok bool) {
	for _, want := range []string{domain + `\` + user, user} {
		for k, pw := range s.cfg.Users {
			if strings.EqualFold(k, want) {
				return k, pw, true
			}
		}
	}
	return "", "", false
}

func (s *Server) connUser(conn string) string {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if st := s.conns[conn]; st != nil && st.user != "" {
		st.touched = time.Now()
		return st.user
	}
	return ""
}

func (s *Server) setConn(conn string, st *connAuth) {
	st.touched = time.Now()
	s.authMu.Lock()
	defer s.authMu.Unlock()
	if len(s.conns) >= maxConnStates {
		for k, old := range s.conns {
			if time.Since(old.touched) > time.Hour {
				delete(s.conns, k)
			}
		}
	}
	s.conns[conn] = st
}

func (s *Server) forgetConn(conn string) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	delete(s.conns, conn)
}

// refuse answers 401 as Windows does: an empty body, no Content-Type, and
// the schemes the server offers (or the NTLM challenge). The request body
// is drained so the connection stays usable for the next leg.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, negotiate string) {
	if negotiate == "" {
		s.unauthorized.Add(1)
		if !s.cfg.DisableNegotiate {
			w.Header().Add("WWW-Authenticate", "Negotiate")
		}
		if !s.cfg.DisableBasic {
			w.Header().Add("WWW-Authenticate", `Basic realm="WSMAN"`)
		}
	} else {
		s.ntlmChallenges.Add(1)
		w.Header().Set("WWW-Authenticate", negotiate)
	}
	drain(r)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}
