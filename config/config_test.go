package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easgate/engine"
)

// writeConfig puts a config and its secret files in a fresh directory.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for name, secret := range map[string]string{"exchange-password": "Exch-P@ss\n", "graph-secret": "graph-s3cret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "easgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func validBody(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadValid(t *testing.T) {
	path := writeConfig(t, validBody(t))
	cfg, warnings, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	if cfg.Exchange.Password.Reveal() != "Exch-P@ss" || cfg.Intune.ClientSecret.Reveal() != "graph-s3cret" {
		t.Errorf("secrets not resolved from their files")
	}
	if got := cfg.Resolve(cfg.Store); got != filepath.Join(filepath.Dir(path), "easgate.db") {
		t.Errorf("store resolves to %s, want it beside the config", got)
	}
	// Defaults survive keys the file does not set.
	if cfg.Schedule.Full != 24*time.Hour || cfg.Schedule.Quick != 15*time.Minute || cfg.Notify.ResendAfter != 72*time.Hour {
		t.Errorf("schedule/notify defaults wrong: %+v %+v", cfg.Schedule, cfg.Notify)
	}
	if cfg.Safety.MaxNewBlocks != 20 || cfg.Safety.MaxNewBlocksPercent != 10 {
		t.Errorf("safety = %+v, want the file's 20 and the default 10%%", cfg.Safety)
	}
	pol := cfg.EnginePolicy()
	if err := pol.Validate(); err != nil {
		t.Errorf("engine policy invalid: %v", err)
	}
	if pol.UnmanagedAccess != engine.AccessQuarantine || pol.GracePeriod != 24*time.Hour || len(pol.PlatformExceptions) != 1 {
		t.Errorf("engine policy = %+v", pol)
	}
}

func TestLoadReportsProblemsWithLines(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want string // file:line prefix and words of the message
	}{
		{"unknown key", func(s string) string {
			return strings.Replace(s, "  parallel: 4\n", "  parallel: 4\n  paralel: 5\n", 1)
		},
			`easgate.yaml:11: unknown field "paralel"`},
		{"bad enum", func(s string) string { return strings.Replace(s, "quarantine\n", "blok\n", 1) },
			`easgate.yaml:18: policy.unmanaged_access: "blok": want block, quarantine or allow`},
		{"wrong type", func(s string) string { return strings.Replace(s, "port: 5986", "port: many", 1) },
			"easgate.yaml:4:"},
		{"plain HTTP with NTLM", func(s string) string { return strings.Replace(s, "https: true", "https: false", 1) },
			"easgate.yaml:5: exchange.https: ntlm over plain HTTP"},
		{"secret in the file", func(s string) string {
			return strings.Replace(s, "  password_file: exchange-password\n", "  password: hunter2\n", 1)
		}, "easgate.yaml:8: exchange.password: secrets are not read from the config file"},
		{"missing secret file", func(s string) string { return strings.Replace(s, "graph-secret", "nope", 1) },
			"intune.client_secret_file"},
		{"bad group id", func(s string) string {
			return strings.Replace(s, "[6f1c0a52-3b7e-4d2a-9c51-0a1e2b3c4d01]", "[Sales]", 1)
		},
			`easgate.yaml:16: policy.include_groups[0]: "Sales"`},
		{"bad exception", func(s string) string { return strings.Replace(s, "access: allow}", "access: permit}", 1) },
			`policy.platform_exceptions[0].access: "permit"`},
		{"duplicate key", func(s string) string { return s + "store: again.db\n" }, "easgate.yaml:29:"},
		{"syntax error", func(s string) string { return s + "exchange: [\n" }, "easgate.yaml:"},
		{"parallel above Exchange's limit", func(s string) string { return strings.Replace(s, "parallel: 4", "parallel: 40", 1) },
			"easgate.yaml:10: exchange.parallel: 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvExchangePassword, "")
			path := writeConfig(t, tt.edit(validBody(t)))
			_, _, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded, want a problem")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Dir(path)+string(filepath.Separator), "")
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
}

func TestSecretsFromEnvironmentAndLooseFiles(t *testing.T) {
	body := strings.Replace(validBody(t), "  password_file: exchange-password\n", "", 1)
	path := writeConfig(t, body)
	t.Setenv(EnvExchangePassword, "from-env")
	if err := os.Chmod(filepath.Join(filepath.Dir(path), "graph-secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Exchange.Password.Reveal() != "from-env" {
		t.Errorf("password not taken from %s", EnvExchangePassword)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "readable by others") {
		t.Errorf("warnings = %q, want one about the 0644 secret file", warnings)
	}
	for _, s := range []string{cfg.Exchange.Password.String(), cfg.Intune.ClientSecret.String()} {
		if s != "********" {
			t.Errorf("secret prints as %q", s)
		}
	}
}

func TestPathFrom(t *testing.T) {
	t.Setenv(EnvConfig, "")
	if PathFrom("") != DefaultPath {
		t.Error("default path")
	}
	t.Setenv(EnvConfig, "/etc/easgate/easgate.yaml")
	if PathFrom("") != "/etc/easgate/easgate.yaml" || PathFrom("x.yaml") != "x.yaml" {
		t.Error("env or flag ignored")
	}
}

func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("store: [\n"))
	f.Add([]byte("exchange: {servers: [a], port: -1}\n"))
	f.Add([]byte("\x00\xff: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("no config and no error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
