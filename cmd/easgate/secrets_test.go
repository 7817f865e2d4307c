package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"easgate/engine/sim"
)

// secretsOf are the credentials a simulated organisation hands easgate.
func secretsOf(s *sim.Sim) map[string]string {
	return map[string]string{
		"WinRM password": s.Info.WinRMPassword,
		"Graph secret":   s.Info.ClientSecret,
		"SMTP password":  s.Info.SMTPPassword,
	}
}

// assertNoSecret fails when any secret appears in data.
func assertNoSecret(t *testing.T, where string, data []byte, secrets map[string]string) {
	t.Helper()
	for name, secret := range secrets {
		if len(secret) < 8 {
			t.Fatalf("%s %q is too short to search for", name, secret)
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the %s appears in %s", name, where)
		}
	}
	if bytes.Contains(data, []byte("Bearer ")) || bytes.Contains(data, []byte("access_token")) {
		t.Errorf("a bearer token appears in %s", where)
	}
}

func TestSecretsStayOutOfLogsStoreErrorsAndCommandLines(t *testing.T) {
	s := startSim(t, 60, 23)
	secrets := secretsOf(s)
	cfg := s.Info.ConfigFile

	// A run at debug level, so that every log line a run can write is written.
	editConfig(t, s, "level: info", "level: debug")
	var outputs bytes.Buffer
	for _, args := range [][]string{
		{"sync", "--config", cfg, "--output", "json"},
		{"sync", "--config", cfg, "--dry-run"},
		{"devices", "--config", cfg, "--output", "json"},
		{"runs", "--config", cfg, "--output", "json"},
		{"config", "validate", "--config", cfg},
	} {
		r := run(t, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		outputs.WriteString(r.stdout + r.stderr)
	}
	assertNoSecret(t, "command output", outputs.Bytes(), secrets)

	// Every kind of credential failure: wrong WinRM password, wrong Graph
	// secret, wrong SMTP password. The error messages name the problem, not
	// the credential.
	wrong := map[string]string{
		"exchange-password": "Wr0ng-WinRM-Passw0rd",
		"graph-secret":      "Wr0ng-Graph-S3cret-Value",
		"smtp-password":     "Wr0ng-SMTP-Passw0rd",
	}
	for file, bad := range wrong {
		p := filepath.Join(s.Dir, file)
		good, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := run(t, "sync", "--config", cfg)
		if file != "smtp-password" && r.code == 0 {
			t.Errorf("sync with a wrong %s succeeded", file)
		}
		outputs.Reset()
		outputs.WriteString(r.stdout + r.stderr)
		assertNoSecret(t, "the output of a sync with a wrong "+file, outputs.Bytes(), map[string]string{file: bad})
		assertNoSecret(t, "the output of a sync with a wrong "+file, outputs.Bytes(), secrets)
		if err := os.WriteFile(p, good, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	for _, f := range []string{"easgate.log", "easgate.db"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			t.Fatalf("%s is empty: nothing was searched", f)
		}
		assertNoSecret(t, f, data, secrets)
		for file, bad := range wrong {
			assertNoSecret(t, f, data, map[string]string{file: bad})
		}
	}

	// The credential travels to Exchange as data on stdin, never in a
	// command line or a script.
	for _, script := range s.Exchange.Scripts() {
		assertNoSecret(t, "a PowerShell script sent to Exchange", []byte(script), secrets)
		if strings.Contains(script, s.Info.WinRMUser) {
			t.Errorf("the service account's name is spliced into a script")
		}
	}
}
