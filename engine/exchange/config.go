package exchange

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"easgate/engine"
)

// Defaults for the Config fields left zero.
const (
	DefaultOperationTimeout = 20 * time.Second
	DefaultCommandTimeout   = 30 * time.Minute
	DefaultParallel         = 4
	// DefaultCoolDown is how long a server that could not be reached is
	// skipped before it is tried again.
	DefaultCoolDown = 5 * time.Minute
	// DefaultShellIdle is how long an idle WinRM shell is kept for the next
	// command before it is deleted.
	DefaultShellIdle = 30 * time.Second
	// MaxParallel is Exchange's default PowerShellMaxConcurrency: sessions
	// one user may hold at once.
	MaxParallel            = 18
	defaultEnvelopeSize    = 153600
	defaultResponseTimeout = 60 * time.Second
)

// Session kinds: how a script gets Exchange's cmdlets.
const (
	SessionRemote = "remote" // New-PSSession to http://<server>/PowerShell/ with the service credential
	SessionSnapin = "snapin" // Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn
)

// WinRM authentication schemes.
const (
	AuthBasic    = "basic"
	AuthNTLM     = "ntlm"
	AuthKerberos = "kerberos"
)

// Config is the exchange: section of easgate.yaml, plus timeouts.
type Config struct {
	// Servers are the Exchange servers, in failover order: a host name,
	// or host:port for a server on another port than Port.
	Servers []string
	// Port is the WinRM port; 0 means 5986 with HTTPS and 5985 without.
	Port  int
	HTTPS bool
	// Auth is the WinRM authentication: AuthNTLM, AuthBasic (the default)
	// or AuthKerberos.
	Auth string
	// Username is DOMAIN\user (or user@domain); with Kerberos, user or
	// user@REALM.
	Username string
	Password string
	// Krb5Conf is the krb5.conf Kerberos reads (realms, KDCs); Keytab or
	// CCache hold the service account's key or tickets, else Password is
	// used. Realm defaults to the one in Username, then krb5.conf's
	// default_realm. SPN defaults to HTTP/<server>.
	Krb5Conf, Keytab, CCache, Realm, SPN string
	// CAPEM is a PEM bundle to verify the server's certificate; empty means
	// the system roots.
	CAPEM              []byte
	InsecureSkipVerify bool
	// Session is SessionRemote (the default) or SessionSnapin.
	Session string
	// SessionURI is where the remote session connects; empty means
	// http://<server>/PowerShell/.
	SessionURI string
	// Parallel is how many PowerShell processes the client runs at once,
	// 1 to MaxParallel; default 4.
	Parallel int
	// AllowInsecureTransport permits WinRM over plain HTTP, where Basic
	// sends the password in the clear and NTLM's messages can be relayed.
	AllowInsecureTransport bool
	// OperationTimeout is WinRM's OperationTimeout: how long one receive
	// waits for output. Default 20 s.
	OperationTimeout time.Duration
	// ResponseTimeout is the HTTP response-header timeout; it must exceed
	// OperationTimeout. Default OperationTimeout + 40 s.
	ResponseTimeout time.Duration
	// CommandTimeout bounds one PowerShell run, start to exit. Default 30 min.
	CommandTimeout time.Duration
	// CoolDown is how long a server that failed to connect is skipped.
	// Default 5 min.
	CoolDown time.Duration
	// ShellIdle is how long an idle shell waits for the next command
	// before it is deleted. Default 30 s.
	ShellIdle time.Duration
	// SkipStatistics leaves Get-MobileDeviceStatistics out of the full
	// inventory: faster on a large organisation, but without last sync times.
	SkipStatistics bool
	// EnvelopeSize is WinRM's MaxEnvelopeSize the client asks for. Default 153,600.
	EnvelopeSize int
	// Observer is told about every PowerShell command and every failed
	// connection attempt; nil means none.
	Observer engine.CallObserver
}

// endpoint is one configured server.
type endpoint struct {
	name string // as configured
	host string
	port int
}

// withDefaults returns the config with defaults filled in, or what is wrong.
func (c Config) withDefaults() (Config, []endpoint, error) {
	bad := func(format string, a ...any) (Config, []endpoint, error) {
		return c, nil, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	if len(c.Servers) == 0 {
		return bad("servers is empty")
	}
	if c.Port == 0 {
		c.Port = 5985
		if c.HTTPS {
			c.Port = 5986
		}
	}
	if c.Port < 1 || c.Port > 65535 {
		return bad("port %d out of range", c.Port)
	}
	var eps []endpoint
	seen := map[string]bool{}
	for i, s := range c.Servers {
		s = strings.TrimSpace(s)
		ep := endpoint{name: s, host: s, port: c.Port}
		if h, p, err := net.SplitHostPort(s); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return bad("servers[%d] %q: bad port", i, s)
			}
			ep.host, ep.port = h, n
		}
		if ep.host == "" || strings.ContainsAny(ep.host, " /\\@") {
			return bad("servers[%d] %q is not a host name", i, s)
		}
		if seen[strings.ToLower(s)] {
			return bad("servers[%d] %q is listed twice", i, s)
		}
		seen[strings.ToLower(s)] = true
		eps = append(eps, ep)
	}
	switch c.Auth = strings.ToLower(strings.TrimSpace(c.Auth)); c.Auth {
	case "":
		c.Auth = AuthBasic
	case AuthBasic, AuthNTLM, AuthKerberos:
	default:
		return bad("auth %q: want basic, ntlm or kerberos", c.Auth)
	}
	if c.Username == "" {
		return bad("username is required")
	}
	switch c.Auth {
	case AuthKerberos:
		if c.Krb5Conf == "" {
			return bad("kerberos needs a krb5.conf (krb5_conf)")
		}
		if c.Keytab == "" && c.CCache == "" && c.Password == "" {
			return bad("kerberos needs a keytab, a credential cache or the password")
		}
	default:
		if c.Password == "" {
			return bad("%s authentication needs the password", c.Auth)
		}
	}
	if !c.HTTPS && !c.AllowInsecureTransport {
		return bad("%s over http exposes the credential: set https, or allow_insecure_transport on a trusted network", c.Auth)
	}
	switch c.Session {
	case "":
		c.Session = SessionRemote
	case SessionRemote, SessionSnapin:
	default:
		return bad("session %q: want remote or snapin", c.Session)
	}
	if c.Session == SessionRemote && c.Password == "" {
		return bad("session remote opens the Exchange session with the service account's password: set it, or use session snapin")
	}
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.Parallel < 1 || c.Parallel > MaxParallel {
		return bad("parallel %d: want 1 to %d (Exchange allows %d PowerShell sessions per user)", c.Parallel, MaxParallel, MaxParallel)
	}
	if c.OperationTimeout == 0 {
		c.OperationTimeout = DefaultOperationTimeout
	}
	if c.OperationTimeout < time.Second || c.OperationTimeout > 60*time.Second {
		return bad("operation timeout %v: want 1 s to 60 s", c.OperationTimeout)
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = max(defaultResponseTimeout, c.OperationTimeout+40*time.Second)
	}
	if c.ResponseTimeout <= c.OperationTimeout+5*time.Second {
		return bad("response timeout %v must be well above the operation timeout %v", c.ResponseTimeout, c.OperationTimeout)
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.CoolDown == 0 {
		c.CoolDown = DefaultCoolDown
	}
	if c.ShellIdle == 0 {
		c.ShellIdle = DefaultShellIdle
	}
	if c.CommandTimeout < 0 || c.CoolDown < 0 || c.ShellIdle < 0 {
		return bad("timeouts must not be negative")
	}
	if c.EnvelopeSize == 0 {
		c.EnvelopeSize = defaultEnvelopeSize
	}
	if c.EnvelopeSize < 8192 {
		return bad("envelope size %d: want at least 8192", c.EnvelopeSize)
	}
	return c, eps, nil
}
