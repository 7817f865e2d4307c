package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"easgate/engine"
)

// Environment variables that may carry secrets instead of *_file keys, and
// the config path.
const (
	EnvConfig           = "EASGATE_CONFIG"
	EnvExchangePassword = "EASGATE_EXCHANGE_PASSWORD"
	EnvGraphSecret      = "EASGATE_GRAPH_CLIENT_SECRET"
	EnvSMTPPassword     = "EASGATE_SMTP_PASSWORD"
	// EnvGraphCertPassword unlocks a password-protected PFX certificate_file.
	EnvGraphCertPassword = "EASGATE_GRAPH_CERTIFICATE_PASSWORD"
)

// DefaultPath is where easgate looks for its config without --config or
// EASGATE_CONFIG.
const DefaultPath = "./easgate.yaml"

// Config is easgate.yaml. Secrets are never read from the file itself:
// only from the files its *_file keys name, or from the environment; the
// resolved values live in fields yaml never sees.
type Config struct {
	Store    string   `yaml:"store"`
	Exchange Exchange `yaml:"exchange"`
	Intune   Intune   `yaml:"intune"`
	Policy   Policy   `yaml:"policy"`
	Safety   Safety   `yaml:"safety"`
	Notify   Notify   `yaml:"notify"`
	Schedule Schedule `yaml:"schedule"`
	Log      Log      `yaml:"log"`
	Control  Control  `yaml:"control"`
	Metrics  Metrics  `yaml:"metrics"`

	// Path is the file the config was read from.
	Path string `yaml:"-"`
}

// Exchange is the exchange: section.
type Exchange struct {
	Servers                []string `yaml:"servers"`
	Port                   int      `yaml:"port"`
	HTTPS                  bool     `yaml:"https"`
	Auth                   string   `yaml:"auth"`
	Username               string   `yaml:"username"`
	PasswordFile           string   `yaml:"password_file"`
	CAFile                 string   `yaml:"ca_file"`
	InsecureSkipVerify     bool     `yaml:"insecure_skip_verify"`
	Session                string   `yaml:"session"`
	Parallel               int      `yaml:"parallel"`
	ApplyBatch             int      `yaml:"apply_batch"`
	AllowInsecureTransport bool     `yaml:"allow_insecure_transport"`
	// CoolDown is how long a server that could not be reached is skipped
	// before it is tried first again; CommandTimeout bounds one PowerShell
	// run.
	CoolDown       time.Duration `yaml:"cool_down"`
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// Kerberos (auth: kerberos): krb5.conf, and a keytab or credential
	// cache; Realm and SPN override the defaults (the user's realm,
	// HTTP/<server>).
	Krb5Conf string `yaml:"krb5_conf"`
	Keytab   string `yaml:"keytab"`
	CCache   string `yaml:"ccache"`
	Realm    string `yaml:"realm"`
	SPN      string `yaml:"spn"`

	Password Secret `yaml:"-"`
}

// Intune is the intune: section.
type Intune struct {
	TenantID         string `yaml:"tenant_id"`
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	CertificateFile  string `yaml:"certificate_file"`
	GraphURL         string `yaml:"graph_url"`
	AuthorityURL     string `yaml:"authority_url"`
	CAFile           string `yaml:"ca_file"`

	ClientSecret Secret `yaml:"-"`
	// CertificatePassword unlocks a PFX certificate_file; from the
	// environment only.
	CertificatePassword Secret `yaml:"-"`
}

// PlatformException is one entry of policy.platform_exceptions.
type PlatformException struct {
	Characteristic string `yaml:"characteristic"`
	Value          string `yaml:"value"`
	Access         string `yaml:"access"`
}

// Policy is the policy: section.
type Policy struct {
	IncludeGroups       []string            `yaml:"include_groups"`
	ExcludeGroups       []string            `yaml:"exclude_groups"`
	UnmanagedAccess     string              `yaml:"unmanaged_access"`
	BlockNoncompliant   bool                `yaml:"block_noncompliant"`
	OverrideDefaultRule bool                `yaml:"override_default_rule"`
	GracePeriod         time.Duration       `yaml:"grace_period"`
	PlatformExceptions  []PlatformException `yaml:"platform_exceptions"`
	ManageOrgDefault    bool                `yaml:"manage_org_default"`
	RemoveIdleAfter     time.Duration       `yaml:"remove_idle_after"`
	AutoLinkSuggestions bool                `yaml:"auto_link_suggestions"`
}

// Safety is the safety: section.
type Safety struct {
	MaxNewBlocks        int     `yaml:"max_new_blocks"`
	MaxNewBlocksPercent float64 `yaml:"max_new_blocks_percent"`
}

// SMTP is notify.smtp.
type SMTP struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	StartTLS     bool   `yaml:"starttls"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	CAFile       string `yaml:"ca_file"`

	Password Secret `yaml:"-"`
}

// Notify is the notify: section.
type Notify struct {
	Enabled       bool          `yaml:"enabled"`
	SMTP          SMTP          `yaml:"smtp"`
	From          string        `yaml:"from"`
	EnrollmentURL string        `yaml:"enrollment_url"`
	ResendAfter   time.Duration `yaml:"resend_after"`
	MaxResends    int           `yaml:"max_resends"`
	TemplateFile  string        `yaml:"template_file"`
	// AdminDigest mails Exchange's AdminMailRecipients a summary after a
	// run that blocked devices.
	AdminDigest bool `yaml:"admin_digest"`
}

// Schedule is the schedule: section.
type Schedule struct {
	Full  time.Duration `yaml:"full"`
	Quick time.Duration `yaml:"quick"`
}

// Log is the log: section.
type Log struct {
	File  string `yaml:"file"`
	Level string `yaml:"level"`
}

// Control is the control: section.
type Control struct {
	Socket string `yaml:"socket"`
	Group  string `yaml:"group"`
}

// Metrics is the metrics: section.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Secret is a password or client secret. It prints as a mask, so that a
// Config can be logged or shown without leaking it.
type Secret string

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "********"
}

// GoString masks the secret in %#v.
func (s Secret) GoString() string { return `config.Secret("********")` }

// Reveal returns the secret itself, for the adapter that needs it.
func (s Secret) Reveal() string { return string(s) }

// Default returns the configuration easgate uses where the file is silent.
func Default() *Config {
	return &Config{
		Store: "./easgate.db",
		Exchange: Exchange{
			Port: 5986, HTTPS: true, Auth: "ntlm", Session: "remote", Parallel: 4, ApplyBatch: 500,
			CoolDown: 5 * time.Minute, CommandTimeout: 30 * time.Minute,
		},
		Intune: Intune{
			GraphURL:     "https://graph.microsoft.com",
			AuthorityURL: "https://login.microsoftonline.com",
		},
		Policy: Policy{
			UnmanagedAccess:     "block",
			BlockNoncompliant:   true,
			OverrideDefaultRule: true,
		},
		Safety: Safety{MaxNewBlocks: 50, MaxNewBlocksPercent: 10},
		Notify: Notify{
			Enabled:       true,
			SMTP:          SMTP{Port: 587, StartTLS: true},
			EnrollmentURL: "https://portal.manage.microsoft.com/",
			ResendAfter:   72 * time.Hour,
			MaxResends:    3,
		},
		Schedule: Schedule{Full: 24 * time.Hour, Quick: 10 * time.Minute},
		Log:      Log{File: "./easgate.log", Level: "info"},
		Control:  Control{Socket: "./easgate.sock"},
	}
}

// PathFrom returns the config path: the flag if set, else EASGATE_CONFIG,
// else ./easgate.yaml.
func PathFrom(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv(EnvConfig); p != "" {
		return p
	}
	return DefaultPath
}

// EnginePolicy returns the policy the engine enforces.
func (c *Config) EnginePolicy() engine.Policy {
	p := engine.Policy{
		IncludeGroups:       c.Policy.IncludeGroups,
		ExcludeGroups:       c.Policy.ExcludeGroups,
		UnmanagedAccess:     engine.Access(c.Policy.UnmanagedAccess),
		BlockNoncompliant:   c.Policy.BlockNoncompliant,
		OverrideDefaultRule: c.Policy.OverrideDefaultRule,
		GracePeriod:         c.Policy.GracePeriod,
		ManageOrgDefault:    c.Policy.ManageOrgDefault,
		RemoveIdleAfter:     c.Policy.RemoveIdleAfter,
		AutoLinkSuggestions: c.Policy.AutoLinkSuggestions,
		Safety:              engine.Safety{MaxNewBlocks: c.Safety.MaxNewBlocks, MaxNewBlocksPercent: c.Safety.MaxNewBlocksPercent},
		Notify: engine.NotifyPolicy{Enabled: c.Notify.Enabled, ResendAfter: c.Notify.ResendAfter, MaxResends: c.Notify.MaxResends,
			AdminDigest: c.Notify.AdminDigest},
	}
	for _, e := range c.Policy.PlatformExceptions {
		p.PlatformExceptions = append(p.PlatformExceptions, engine.PlatformException{
			Characteristic: engine.Characteristic(e.Characteristic), Value: e.Value, Access: engine.Access(e.Access),
		})
	}
	return p
}

// Resolve returns p relative to the config file's directory when it is
// relative, so that a service finds its files whatever its working directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// ReadFile reads a file a config key names, resolved like Resolve.
func (c *Config) ReadFile(p string) ([]byte, error) {
	b, err := os.ReadFile(c.Resolve(p))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", c.Resolve(p), err)
	}
	return b, nil
}
