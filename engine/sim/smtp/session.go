package smtp

import (
	"crypto/subtle"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Replies for refused commands, with the codes real servers use.
var (
	errBackPressure = &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system resources"}
	errTLSRequired  = &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errAuthRequired = &gosmtp.SMTPError{Code: 530, EnhancedCode: gosmtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errShutdown     = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
)

// session is one client's SMTP session; go-smtp calls it from the
// connection's goroutine only.
type session struct {
	sink *Sink
	cut  <-chan struct{}
	tls  bool
	user string
	from string
	to   []string
}

var _ gosmtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string {
	if s.sink.opts.Username == "" {
		return nil
	}
	return s.sink.opts.Mechanisms
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.sink.opts.Username == "" || !slices.Contains(s.sink.opts.Mechanisms, mech) {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	switch mech {
	case MechPlain:
		return sasl.NewPlainServer(s.login), nil
	case MechLogin:
		return &loginServer{check: s.login}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

// login checks credentials in constant time and answers 535 5.7.8 for
// anything but the configured user and password.
func (s *session) login(identity, username, password string) error {
	o := s.sink.opts
	userOK := subtle.ConstantTimeCompare([]byte(username), []byte(o.Username)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(password), []byte(o.Password)) == 1
	if !userOK || !passOK || (identity != "" && identity != username) {
		s.sink.log.Info("smtp sink refused login", keyUser, username)
		return gosmtp.ErrAuthFailed
	}
	s.user = username
	return nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	select {
	case <-s.cut: // a connection accepted just as the sink went down
		return errShutdown
	default:
	}
	switch {
	case s.sink.opts.RequireTLS && !s.tls:
		return errTLSRequired
	case s.sink.opts.Username != "" && s.user == "":
		return errAuthRequired
	case s.sink.underPressure():
		return errBackPressure
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if err := s.sink.recipientFault(to); err != nil {
		s.sink.log.Info("smtp sink refused recipient", keyTo, to, keyErr, err)
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	if d := s.sink.currentDelay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.cut:
			t.Stop()
			return errShutdown
		}
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp turns ErrDataTooLarge into 552
	}
	m := parseMessage(raw)
	m.From, m.To, m.TLS, m.User = s.from, slices.Clone(s.to), s.tls, s.user
	m.Received = time.Now().UTC()
	s.sink.store(m)
	s.sink.log.Info("smtp sink accepted message", keyFrom, m.From, keyTo, m.To, keyBytes, len(raw))
	return nil
}

func (s *session) Reset() {
	s.from, s.to = "", nil
}

func (s *session) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism (the one Exchange
// offers besides NTLM and GSSAPI); go-sasl only has its client side.
type loginServer struct {
	step  int
	user  string
	check func(identity, username, password string) error
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		if response != nil { // AUTH LOGIN <base64 user name>
			l.user, l.step = string(response), 2
			return []byte("Password:"), false, nil
		}
		l.step = 1
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check("", l.user, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}
