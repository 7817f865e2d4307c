package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Problem is one thing wrong with a config file, with where it is.
type Problem struct {
	File string
	Line int // 0 when the problem has no single place
	Key  string
	Msg  string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Key, p.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, p.Msg)
}

// Error lists every problem found in a config file.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// ErrInvalid is wrapped by every *Error, so callers can tell a
// configuration problem (exit code 2) from an I/O failure.
var ErrInvalid = errors.New("invalid configuration")

// Is reports ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// maxFileSize bounds what Load reads: a config file is a few kilobytes.
const maxFileSize = 1 << 20

// Load reads, decodes and validates a config file, resolves its secrets,
// and returns warnings (say, a secret file readable by others) beside it.
// Every problem is reported with file:line.
func Load(path string) (*Config, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, nil, &Error{Problems: []Problem{{File: path, Msg: fmt.Sprintf("file is %d bytes; a config file is at most %d", len(data), maxFileSize)}}}
	}
	return Parse(path, data)
}

// secretKeys are keys people try to put secrets under; the message points
// them at the *_file key or the environment instead.
var secretKeys = map[string]string{
	"password":      "password_file or " + EnvExchangePassword + " (exchange) / " + EnvSMTPPassword + " (notify.smtp)",
	"client_secret": "client_secret_file or " + EnvGraphSecret,
}

// Parse decodes and validates config data read from path.
func Parse(path string, data []byte) (cfg *Config, warnings []string, err error) {
	defer func() {
		// The YAML library can panic on some malformed input; that is the
		// file's problem, reported as such.
		if r := recover(); r != nil {
			cfg, warnings = nil, nil
			err = &Error{Problems: []Problem{{File: path, Msg: fmt.Sprintf("the YAML could not be read (%v); check tags, anchors and indentation", r)}}}
		}
	}()
	return parse(path, data)
}

func parse(path string, data []byte) (*Config, []string, error) {
	cfg := Default()
	cfg.Path = path
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, nil, &Error{Problems: []Problem{yamlProblem(path, err)}}
	}
	v := &validator{file: path, ast: file}
	for name, hint := range secretKeys {
		for _, prefix := range []string{"$.exchange.", "$.notify.smtp.", "$.intune."} {
			if line := v.line(prefix + name); line > 0 {
				v.add(line, strings.TrimPrefix(prefix, "$.")+name, "secrets are not read from the config file; use "+hint)
			}
		}
	}
	if len(v.problems) > 0 {
		return nil, nil, &Error{Problems: v.problems}
	}
	if err := yaml.UnmarshalWithOptions(data, cfg, yaml.Strict()); err != nil {
		return nil, nil, &Error{Problems: []Problem{yamlProblem(path, err)}}
	}
	v.check(cfg)
	warnings := v.secrets(cfg)
	if len(v.problems) > 0 {
		return nil, warnings, &Error{Problems: v.problems}
	}
	return cfg, warnings, nil
}

func yamlProblem(path string, err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		return Problem{File: path, Line: ye.GetToken().Position.Line, Msg: ye.GetMessage()}
	}
	return Problem{File: path, Msg: err.Error()}
}

type validator struct {
	file     string
	ast      *ast.File
	problems []Problem
}

// line returns the line of the YAML node at a path like $.policy.unmanaged_access,
// or 0 when the key is absent.
func (v *validator) line(path string) int {
	p, err := yaml.PathString(path)
	if err != nil {
		return 0
	}
	n, err := p.FilterFile(v.ast)
	if err != nil || n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

func (v *validator) add(line int, key, msg string) {
	v.problems = append(v.problems, Problem{File: v.file, Line: line, Key: key, Msg: msg})
}

// bad records a problem at key (a dotted path such as policy.grace_period).
func (v *validator) bad(key, format string, args ...any) {
	v.add(v.line("$."+key), key, fmt.Sprintf(format, args...))
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (v *validator) check(c *Config) {
	if c.Store == "" {
		v.bad("store", "is empty; name the store file")
	}
	v.checkExchange(&c.Exchange)
	v.checkIntune(&c.Intune)
	v.checkPolicy(c)
	v.checkNotify(&c.Notify)
	if c.Schedule.Full < 0 || c.Schedule.Quick < 0 {
		v.bad("schedule", "intervals must not be negative")
	}
	if c.Schedule.Quick > 0 && c.Schedule.Quick < minInterval {
		v.bad("schedule.quick", "%s is shorter than %s; Exchange and Graph would be read back to back", c.Schedule.Quick, minInterval)
	}
	if c.Schedule.Full > 0 && c.Schedule.Full < minInterval {
		v.bad("schedule.full", "%s is shorter than %s", c.Schedule.Full, minInterval)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		v.bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			v.bad("metrics.listen", "%q: want host:port, e.g. 127.0.0.1:9469", c.Metrics.Listen)
		}
	}
}

const minInterval = time.Minute

func (v *validator) checkExchange(x *Exchange) {
	if len(x.Servers) == 0 {
		v.bad("exchange.servers", "no Exchange server configured")
	}
	for i, s := range x.Servers {
		// host, or host:port for a server on another port (as the
		// Exchange adapter takes them).
		host := s
		if h, p, err := net.SplitHostPort(s); err == nil {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				v.bad(fmt.Sprintf("exchange.servers[%d]", i), "%q: %q is not a TCP port", s, p)
				continue
			}
			host = h
		}
		if host == "" || strings.ContainsAny(host, " /\\:@") {
			v.bad(fmt.Sprintf("exchange.servers[%d]", i), "%q is not a host name", s)
		}
	}
	if x.Port < 1 || x.Port > 65535 {
		v.bad("exchange.port", "%d is not a TCP port", x.Port)
	}
	if !oneOf(x.Auth, "basic", "ntlm", "kerberos") {
		v.bad("exchange.auth", "%q: want basic, ntlm or kerberos", x.Auth)
	}
	if !oneOf(x.Session, "remote", "snapin") {
		v.bad("exchange.session", "%q: want remote or snapin", x.Session)
	}
	if x.Parallel < 1 || x.Parallel > 18 {
		v.bad("exchange.parallel", "%d: want 1 to 18 (Exchange allows 18 PowerShell sessions per user)", x.Parallel)
	}
	if x.CoolDown < 0 || x.CommandTimeout < 0 {
		v.bad("exchange", "cool_down and command_timeout must not be negative")
	}
	if x.Auth == "kerberos" && x.Krb5Conf == "" {
		v.bad("exchange.krb5_conf", "auth: kerberos needs krb5_conf (the realms and KDCs), and a keytab, a ccache or a password")
	}
	if x.ApplyBatch < 1 || x.ApplyBatch > 5000 {
		v.bad("exchange.apply_batch", "%d: want 1 to 5000 list changes per PowerShell process", x.ApplyBatch)
	}
	if !x.HTTPS && (x.Auth == "basic" || x.Auth == "ntlm") && !x.AllowInsecureTransport {
		v.bad("exchange.https", "%s over plain HTTP sends the credential unprotected; use https: true, or set allow_insecure_transport: true on a trusted network", x.Auth)
	}
	if x.Username == "" {
		v.bad("exchange.username", "no service account configured")
	}
	if x.InsecureSkipVerify && x.CAFile != "" {
		v.bad("exchange.insecure_skip_verify", "ca_file is set too: drop insecure_skip_verify and let ca_file verify the server")
	}
}

func (v *validator) checkIntune(in *Intune) {
	if !guidRE.MatchString(in.TenantID) && !strings.Contains(in.TenantID, ".") {
		v.bad("intune.tenant_id", "%q: want the tenant's GUID or its domain", in.TenantID)
	}
	if !guidRE.MatchString(in.ClientID) {
		v.bad("intune.client_id", "%q: want the app registration's application (client) ID, a GUID", in.ClientID)
	}
	if in.ClientSecretFile != "" && in.CertificateFile != "" {
		v.bad("intune.certificate_file", "client_secret_file is set too; use one credential")
	}
	for _, k := range []struct{ key, val string }{{"intune.graph_url", in.GraphURL}, {"intune.authority_url", in.AuthorityURL}} {
		u, err := url.Parse(k.val)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			v.bad(k.key, "%q: want an https:// URL", k.val)
		}
	}
}

func (v *validator) checkPolicy(c *Config) {
	p := &c.Policy
	if !oneOf(p.UnmanagedAccess, "block", "quarantine", "allow") {
		v.bad("policy.unmanaged_access", "%q: want block, quarantine or allow", p.UnmanagedAccess)
	}
	for key, groups := range map[string][]string{"policy.include_groups": p.IncludeGroups, "policy.exclude_groups": p.ExcludeGroups} {
		for i, g := range groups {
			if !guidRE.MatchString(g) {
				v.bad(fmt.Sprintf("%s[%d]", key, i), "%q: want an Entra group object ID (a GUID)", g)
			}
		}
	}
	for i, e := range p.PlatformExceptions {
		key := fmt.Sprintf("policy.platform_exceptions[%d]", i)
		if !oneOf(e.Characteristic, "DeviceModel", "DeviceType", "DeviceOS", "UserAgent") {
			v.bad(key+".characteristic", "%q: want DeviceModel, DeviceType, DeviceOS or UserAgent", e.Characteristic)
		}
		if e.Value == "" {
			v.bad(key+".value", "is empty; exceptions match a value exactly")
		}
		if !oneOf(e.Access, "allow", "block", "quarantine") {
			v.bad(key+".access", "%q: want allow, block or quarantine", e.Access)
		}
	}
	if p.GracePeriod < 0 {
		v.bad("policy.grace_period", "must not be negative")
	}
	if p.RemoveIdleAfter < 0 {
		v.bad("policy.remove_idle_after", "must not be negative")
	}
	if c.Safety.MaxNewBlocks < 0 {
		v.bad("safety.max_new_blocks", "must not be negative")
	}
	if c.Safety.MaxNewBlocksPercent < 0 || c.Safety.MaxNewBlocksPercent > 100 {
		v.bad("safety.max_new_blocks_percent", "%g: want 0 to 100", c.Safety.MaxNewBlocksPercent)
	}
}

func (v *validator) checkNotify(n *Notify) {
	if !n.Enabled {
		return
	}
	if n.SMTP.Host == "" {
		v.bad("notify.smtp.host", "notifications are enabled but no SMTP host is configured")
	}
	if n.SMTP.Port < 1 || n.SMTP.Port > 65535 {
		v.bad("notify.smtp.port", "%d is not a TCP port", n.SMTP.Port)
	}
	if _, err := mail.ParseAddress(n.From); err != nil {
		v.bad("notify.from", "%q is not a mail address: %v", n.From, err)
	}
	if u, err := url.Parse(n.EnrollmentURL); err != nil || u.Scheme == "" {
		v.bad("notify.enrollment_url", "%q is not a URL", n.EnrollmentURL)
	}
	if n.ResendAfter < 0 || n.MaxResends < 0 {
		v.bad("notify", "resend_after and max_resends must not be negative")
	}
}

// secrets resolves every secret from its file or the environment, checks
// that referenced files exist, and warns about secret files others can read.
func (v *validator) secrets(c *Config) []string {
	var warnings []string
	read := func(key, file, env string, required bool) Secret {
		if file != "" {
			path := c.Resolve(file)
			fi, err := os.Stat(path)
			if err != nil {
				v.bad(key, "%v", err)
				return ""
			}
			if fi.Mode().Perm()&0o077 != 0 {
				warnings = append(warnings, fmt.Sprintf("%s: %s is readable by others (mode %04o); chmod 600 it", key, path, fi.Mode().Perm()))
			}
			b, err := os.ReadFile(path)
			if err != nil {
				v.bad(key, "%v", err)
				return ""
			}
			s := strings.TrimRight(string(b), "\r\n")
			if s == "" {
				v.bad(key, "%s is empty", path)
			}
			return Secret(s)
		}
		if s := os.Getenv(env); s != "" {
			return Secret(s)
		}
		if required {
			v.bad(key, "no secret: set %s or the environment variable %s", key, env)
		}
		return ""
	}
	x := &c.Exchange
	// Kerberos can do without a password when a keytab or ticket cache
	// is given, except that session: remote hands the password to the
	// Exchange session.
	needPassword := x.Auth != "kerberos" || (x.Keytab == "" && x.CCache == "") || x.Session == "remote"
	x.Password = read("exchange.password_file", x.PasswordFile, EnvExchangePassword, needPassword)
	in := &c.Intune
	if in.CertificateFile != "" {
		if _, err := os.Stat(c.Resolve(in.CertificateFile)); err != nil {
			v.bad("intune.certificate_file", "%v", err)
		}
		in.CertificatePassword = Secret(os.Getenv(EnvGraphCertPassword))
	} else {
		in.ClientSecret = read("intune.client_secret_file", in.ClientSecretFile, EnvGraphSecret, true)
	}
	if c.Notify.Enabled && c.Notify.SMTP.Username != "" {
		c.Notify.SMTP.Password = read("notify.smtp.password_file", c.Notify.SMTP.PasswordFile, EnvSMTPPassword, true)
	}
	for _, f := range []struct{ key, path string }{
		{"exchange.ca_file", x.CAFile}, {"intune.ca_file", in.CAFile},
		{"exchange.krb5_conf", x.Krb5Conf}, {"exchange.keytab", x.Keytab}, {"exchange.ccache", x.CCache},
		{"notify.smtp.ca_file", c.Notify.SMTP.CAFile}, {"notify.template_file", c.Notify.TemplateFile},
	} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(c.Resolve(f.path))
		if err != nil {
			v.bad(f.key, "%v", err)
			continue
		}
		// A keytab or credential cache holds keys as good as the password.
		if (f.key == "exchange.keytab" || f.key == "exchange.ccache") && fi.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("%s: %s is readable by others (mode %04o); chmod 600 it", f.key, c.Resolve(f.path), fi.Mode().Perm()))
		}
	}
	// The certificate file holds the application's private key.
	if p := c.Resolve(in.CertificateFile); p != "" {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("intune.certificate_file: %s is readable by others (mode %04o); chmod 600 it", p, fi.Mode().Perm()))
		}
	}
	return warnings
}
