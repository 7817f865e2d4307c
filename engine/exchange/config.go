package exchange

import (
	"fmt"
	"strings"
	"time"
)

// Defaults for the Config fields left zero.
const (
	DefaultOperationTimeout = 20 * time.Second
	DefaultCommandTimeout   = 30 * time.Minute
	DefaultParallel         = 4
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

// Config is the exchange: section of easgate.yaml, plus timeouts.
type Config struct {
	// Servers are the Exchange servers, in failover order. This milestone
	// uses the first.
	Servers []string
	// Port is the WinRM port; 0 means 5986 with HTTPS and 5985 without.
	Port  int
	HTTPS bool
	// Auth is the WinRM authentication: "basic" (the default). NTLM and
	// Kerberos come later.
	Auth     string
	Username string
	Password string
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
	// AllowInsecureTransport permits Basic authentication over plain HTTP,
	// which sends the password in the clear.
	AllowInsecureTransport bool
	// OperationTimeout is WinRM's OperationTimeout: how long one receive
	// waits for output. Default 20 s.
	OperationTimeout time.Duration
	// ResponseTimeout is the HTTP response-header timeout; it must exceed
	// OperationTimeout. Default OperationTimeout + 40 s.
	ResponseTimeout time.Duration
	// CommandTimeout bounds one PowerShell run, start to exit. Default 30 min.
	CommandTimeout time.Duration
	// SkipStatistics leaves Get-MobileDeviceStatistics out of the full
	// inventory: faster on a large organisation, but without last sync times.
	SkipStatistics bool
	// EnvelopeSize is WinRM's MaxEnvelopeSize the client asks for. Default 153,600.
	EnvelopeSize int
}

// withDefaults returns the config with defaults filled in, or what is wrong.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, a ...any) (Config, error) {
		return c, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	if len(c.Servers) == 0 || strings.TrimSpace(c.Servers[0]) == "" {
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
	switch c.Auth = strings.ToLower(c.Auth); c.Auth {
	case "", "basic":
		c.Auth = "basic"
	case "ntlm", "kerberos":
		return bad("auth %s is not supported yet: use basic over https", c.Auth)
	default:
		return bad("auth %q: want basic, ntlm or kerberos", c.Auth)
	}
	if c.Username == "" || c.Password == "" {
		return bad("username and password are required")
	}
	if !c.HTTPS && !c.AllowInsecureTransport {
		return bad("basic authentication over http sends the password in the clear: set https, or allow_insecure_transport")
	}
	switch c.Session {
	case "":
		c.Session = SessionRemote
	case SessionRemote, SessionSnapin:
	default:
		return bad("session %q: want remote or snapin", c.Session)
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
	if c.EnvelopeSize == 0 {
		c.EnvelopeSize = defaultEnvelopeSize
	}
	if c.EnvelopeSize < 8192 {
		return bad("envelope size %d: want at least 8192", c.EnvelopeSize)
	}
	return c, nil
}
