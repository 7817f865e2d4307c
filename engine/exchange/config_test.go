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
		check  func(*testing.T, Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Port != 5986 || c.Auth != "basic" || c.Session != SessionRemote || c.Parallel != 4 ||
				c.OperationTimeout != 20*time.Second || c.ResponseTimeout != 60*time.Second || c.EnvelopeSize != 153600 {
				t.Errorf("defaults %+v", c)
			}
		}},
		{name: "http port", change: func(c *Config) { c.HTTPS, c.AllowInsecureTransport = false, true }, check: func(t *testing.T, c Config) {
			if c.Port != 5985 {
				t.Errorf("port %d", c.Port)
			}
		}},
		{name: "long operation timeout raises the response timeout", change: func(c *Config) { c.OperationTimeout = 50 * time.Second },
			check: func(t *testing.T, c Config) {
				if c.ResponseTimeout != 90*time.Second {
					t.Errorf("response timeout %v", c.ResponseTimeout)
				}
			}},
		{name: "no servers", change: func(c *Config) { c.Servers = nil }, bad: "servers is empty"},
		{name: "basic over http", change: func(c *Config) { c.HTTPS = false }, bad: "in the clear"},
		{name: "ntlm not yet", change: func(c *Config) { c.Auth = "NTLM" }, bad: "not supported yet"},
		{name: "unknown auth", change: func(c *Config) { c.Auth = "digest" }, bad: `auth "digest"`},
		{name: "no password", change: func(c *Config) { c.Password = "" }, bad: "password are required"},
		{name: "unknown session", change: func(c *Config) { c.Session = "psrp" }, bad: `session "psrp"`},
		{name: "too parallel", change: func(c *Config) { c.Parallel = 19 }, bad: "parallel 19"},
		{name: "port", change: func(c *Config) { c.Port = 70000 }, bad: "port 70000"},
		{name: "operation timeout", change: func(c *Config) { c.OperationTimeout = 2 * time.Minute }, bad: "operation timeout"},
		{name: "response timeout too close", change: func(c *Config) { c.ResponseTimeout = 21 * time.Second }, bad: "well above"},
		{name: "envelope", change: func(c *Config) { c.EnvelopeSize = 100 }, bad: "envelope size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.change != nil {
				tt.change(&cfg)
			}
			got, err := cfg.withDefaults()
			if tt.bad != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("err = %v, want ErrConfig with %q", err, tt.bad)
				}
				if strings.Contains(err.Error(), "pw") && tt.name != "no password" {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
	if _, err := New(Config{Servers: []string{"ex01"}, HTTPS: true, Username: "u", Password: "p", CAPEM: []byte("not pem")}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("bad CA: err = %v", err)
	}
}
