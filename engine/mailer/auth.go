package mailer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wneessen/go-mail/smtp"
)

// plainOrLogin is SMTP AUTH with PLAIN if the server offers it, else LOGIN
// (Exchange offers LOGIN, NTLM and GSSAPI, not PLAIN). go-mail's own
// auto-discovery would prefer CRAM-MD5, NTLM or SCRAM when offered, which
// a service account's password may not work with. The mechanisms
// themselves are go-mail's, which refuse to send credentials over a
// connection without TLS. A value serves one session.
type plainOrLogin struct {
	user, password, host string
	mech                 smtp.Auth
}

var _ smtp.Auth = (*plainOrLogin)(nil)

func (a *plainOrLogin) Start(server *smtp.ServerInfo) (string, []byte, error) {
	switch {
	case slices.Contains(server.Auth, "PLAIN"):
		a.mech = smtp.PlainAuth("", a.user, a.password, a.host, false)
	case slices.Contains(server.Auth, "LOGIN"):
		a.mech = smtp.LoginAuth(a.user, a.password, a.host, false)
	default:
		return "", nil, fmt.Errorf("%w: the server offers AUTH %s, not PLAIN or LOGIN",
			ErrConfig, strings.Join(server.Auth, " "))
	}
	return a.mech.Start(server)
}

func (a *plainOrLogin) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.mech.Next(fromServer, more)
}
