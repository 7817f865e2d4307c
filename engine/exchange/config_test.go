package exchange

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	base := Config{Servers: []string{"ex01"}, HTTPS: true, Username: `CONTOSO\svc`, Password: "pw"}
	tests := []struct {
		name   string
		change func(*Config)
		bad    string // part of the error; "" when valid
		check  func(*testing.T, Config, []endpoint)
	}{
		{name: "defaults", check: func(t *testing.T, c Config, eps []endpoint) {
			if c.Port != 5986 || c.Auth != AuthBasic || c.Session != SessionRemote || c.Parallel != 4 ||
				c.OperationTimeout != 20*time.Second || c.ResponseTimeout != 60*time.Second || c.EnvelopeSize != 153600 ||
				c.CoolDown != 5*time.Minute || c.ShellIdle != 30*time.Second || c.CommandTimeout != 30*time.Minute {
				t.Errorf("defaults %+v", c)
			}
			if len(eps) != 1 || eps[0] != (endpoint{name: "ex01", host: "ex01", port: 5986}) {
				t.Errorf("endpoints %+v", eps)
			}
		}},
		{name: "http port", change: func(c *Config) { c.HTTPS, c.AllowInsecureTransport = false, true }, check: func(t *testing.T, c Config, _ []endpoint) {
			if c.Port != 5985 {
				t.Errorf("port %d", c.Port)
			}
		}},
		{name: "servers in failover order, one on its own port", change: func(c *Config) { c.Servers = []string{"ex01.contoso.com", "ex02.contoso.com:15986"} },
			check: func(t *testing.T, _ Config, eps []endpoint) {
				if len(eps) != 2 || eps[0].host != "ex01.contoso.com" || eps[0].port != 5986 || eps[1] != (endpoint{name: "ex02.contoso.com:15986", host: "ex02.contoso.com", port: 15986}) {
					t.Errorf("endpoints %+v", eps)
				}
			}},
		{name: "ntlm", change: func(c *Config) { c.Auth = "NTLM" }, check: func(t *testing.T, c Config, _ []endpoint) {
			if c.Auth != AuthNTLM {
				t.Errorf("auth %q", c.Auth)
			}
		}},
		{name: "kerberos with a keytab and the snap-in needs no password", change: func(c *Config) {
			c.Auth, c.Krb5Conf, c.Keytab, c.Password, c.Session = "kerberos", "/etc/krb5.conf", "/etc/easgate.keytab", "", SessionSnapin
		}, check: func(t *testing.T, c Config, _ []endpoint) {}},
		{name: "long operation timeout raises the response timeout", change: func(c *Config) { c.OperationTimeout = 50 * time.Second },
			check: func(t *testing.T, c Config, _ []endpoint) {
				if c.ResponseTimeout != 90*time.Second {
					t.Errorf("response timeout %v", c.ResponseTimeout)
				}
			}},
		{name: "no servers", change: func(c *Config) { c.Servers = nil }, bad: "servers is empty"},
		{name: "blank server", change: func(c *Config) { c.Servers = []string{" "} }, bad: "is not a host name"},
		{name: "server twice", change: func(c *Config) { c.Servers = []string{"ex01", "EX01"} }, bad: "listed twice"},
		{name: "server with a bad port", change: func(c *Config) { c.Servers = []string{"ex01:0"} }, bad: "bad port"},
		{name: "basic over http", change: func(c *Config) { c.HTTPS = false }, bad: "basic over http exposes the credential"},
		{name: "ntlm over http", change: func(c *Config) { c.HTTPS, c.Auth = false, AuthNTLM }, bad: "ntlm over http"},
		{name: "unknown auth", change: func(c *Config) { c.Auth = "digest" }, bad: `auth "digest"`},
		{name: "no password", change: func(c *Config) { c.Password = "" }, bad: "needs the password"},
		{name: "no user", change: func(c *Config) { c.Username = "" }, bad: "username is required"},
		{name: "kerberos without krb5.conf", change: func(c *Config) { c.Auth = AuthKerberos }, bad: "krb5.conf"},
		{name: "kerberos without a key", change: func(c *Config) { c.Auth, c.Krb5Conf, c.Password = AuthKerberos, "/etc/krb5.conf", "" },
			bad: "keytab, a credential cache or the password"},
		{name: "remote session without the password", change: func(c *Config) {
			c.Auth, c.Krb5Conf, c.Keytab, c.Password = AuthKerberos, "/etc/krb5.conf", "/k", ""
		}, bad: "session remote opens the Exchange session with the service account's password"},
		{name: "unknown session", change: func(c *Config) { c.Session = "psrp" }, bad: `session "psrp"`},
		{name: "too parallel", change: func(c *Config) { c.Parallel = 19 }, bad: "parallel 19"},
		{name: "port", change: func(c *Config) { c.Port = 70000 }, bad: "port 70000"},
		{name: "operation timeout", change: func(c *Config) { c.OperationTimeout = 2 * time.Minute }, bad: "operation timeout"},
		{name: "response timeout too close", change: func(c *Config) { c.ResponseTimeout = 21 * time.Second }, bad: "well above"},
		{name: "negative cool-down", change: func(c *Config) { c.CoolDown = -time.Second }, bad: "negative"},
		{name: "envelope", change: func(c *Config) { c.EnvelopeSize = 100 }, bad: "envelope size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.change != nil {
				tt.change(&cfg)
			}
			got, eps, err := cfg.withDefaults()
			if tt.bad != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("err = %v, want ErrConfig with %q", err, tt.bad)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got, eps)
		})
	}
	if _, err := New(Config{Servers: []string{"ex01"}, HTTPS: true, Username: "u", Password: "p", CAPEM: []byte("not pem")}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("bad CA: err = %v", err)
	}
}
