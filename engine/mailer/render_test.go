package mailer

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easgate/engine"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func renderer(t *testing.T, cfg Config) *Mailer {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "smtp.contoso.com"
	}
	if cfg.From == "" {
		cfg.From = "IT <mobile@contoso.com>"
	}
	return newMailer(t, cfg)
}

// TestRenderDefaultGolden pins the built-in template's output for the
// sample notifications; regenerate with go test -run Golden -update.
func TestRenderDefaultGolden(t *testing.T) {
	m := renderer(t, Config{EnrollmentURL: "https://portal.manage.microsoft.com/?upn={{.Mailbox}}"})
	names := []string{"iphone-block", "pixel-quarantine-resend", "samsung-sparse"}
	for i, n := range samples() {
		t.Run(names[i], func(t *testing.T) {
			r, err := m.Render(n)
			if err != nil {
				t.Fatal(err)
			}
			got := "Subject: " + r.Subject + "\n\n" + r.Text + "\n-----\n" + r.HTML
			path := filepath.Join("testdata", "golden", names[i]+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendering differs from %s (run with -update if intended):\n%s", path, got)
			}
		})
	}
}

func TestRenderWhatTheUserNeeds(t *testing.T) {
	m := renderer(t, Config{EnrollmentURL: testURL})
	tests := []struct {
		name         string
		mod          func(*engine.Notification)
		subject      string
		textHas      []string
		textLacks    []string
		htmlHas      []string
		fromDevice   bool
		wantPlatform string
	}{
		{
			name:         "iphone to be blocked",
			subject:      "Enroll your iPhone15C2 or it will lose access to work email",
			textHas:      []string{"iPhone15C2 (iOS 17.5.1 21F90)", "will be blocked", "First seen:  14 March 2025", renderedURL, "ApplF17XK2L9Q4MN", "no MDM record"},
			textLacks:    []string{"on the device itself"},
			htmlHas:      []string{"<strong>blocked</strong>"},
			wantPlatform: PlatformIOS,
		},
		{
			name: "pixel to be quarantined, reminder",
			mod: func(n *engine.Notification) {
				n.DeviceType, n.DeviceModel, n.DeviceOS, n.Access, n.Resend = "Android", "Pixel 8", "Android 14", engine.AccessQuarantine, true
			},
			subject:      "Reminder: Enroll your Pixel 8 or it will be quarantined from work email",
			textHas:      []string{"This is a reminder.", "will be quarantined", "on the device itself", "Android devices other than Samsung's"},
			htmlHas:      []string{"<strong>on the device itself</strong>"},
			fromDevice:   true,
			wantPlatform: PlatformAndroid,
		},
		{
			name: "gmail on a samsung phone is android, not samsung",
			mod: func(n *engine.Notification) {
				n.DeviceType, n.DeviceModel, n.DeviceOS = "Android", "SM-S911B", "Android 14"
			},
			subject:      "Enroll your SM-S911B or it will lose access to work email",
			textHas:      []string{"on the device itself"},
			fromDevice:   true,
			wantPlatform: PlatformAndroid,
		},
		{
			name: "samsung email reports its EAS ID",
			mod: func(n *engine.Notification) {
				n.DeviceType, n.DeviceModel, n.DeviceOS, n.Access = "SAMSUNGSMS911B", "SM-S911B", "Android 14.0.0", engine.AccessNone
			},
			subject:      "Enroll your SM-S911B to keep access to work email",
			textHas:      []string{"Device type: SAMSUNGSMS911B", "Company Portal"},
			textLacks:    []string{"on the device itself", "will be blocked"},
			wantPlatform: PlatformSamsung,
		},
		{
			name:         "nothing known about the device",
			mod:          func(n *engine.Notification) { n.DeviceType, n.DeviceModel, n.DeviceOS, n.Reason = "", "", "", "" },
			subject:      "Enroll your mobile device or it will lose access to work email",
			textHas:      []string{"Device:      mobile device\n", "First seen:  14 March 2025"},
			textLacks:    []string{"Device type", "helpdesk: "},
			wantPlatform: PlatformOther,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := notification()
			if tt.mod != nil {
				tt.mod(&n)
			}
			d := newData(n)
			if d.Platform != tt.wantPlatform || d.EnrollFromDevice != tt.fromDevice {
				t.Errorf("Platform %q EnrollFromDevice %v, want %q %v", d.Platform, d.EnrollFromDevice, tt.wantPlatform, tt.fromDevice)
			}
			r, err := m.Render(n)
			if err != nil {
				t.Fatal(err)
			}
			if r.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", r.Subject, tt.subject)
			}
			for _, s := range tt.textHas {
				if !strings.Contains(r.Text, s) {
					t.Errorf("Text lacks %q:\n%s", s, r.Text)
				}
			}
			for _, s := range tt.textLacks {
				if strings.Contains(r.Text, s) {
					t.Errorf("Text has %q:\n%s", s, r.Text)
				}
			}
			for _, s := range tt.htmlHas {
				if !strings.Contains(r.HTML, s) {
					t.Errorf("HTML lacks %q", s)
				}
			}
		})
	}
}

func TestRenderEscapesUntrustedFields(t *testing.T) {
	m := renderer(t, Config{EnrollmentURL: testURL})
	tests := []struct {
		name      string
		mod       func(*engine.Notification)
		htmlLacks []string
		htmlHas   []string
		textHas   []string
		anyLacks  []string // in subject, text and html
	}{
		{
			name:      "script in the model",
			mod:       func(n *engine.Notification) { n.DeviceModel = "<script>alert(1)</script>" },
			htmlLacks: []string{"<script>"},
			htmlHas:   []string{"&lt;script&gt;alert(1)&lt;/script&gt;"},
			textHas:   []string{"<script>alert(1)</script>"}, // plain text is not markup
		},
		{
			name:      "attribute breakout in the reason",
			mod:       func(n *engine.Notification) { n.Reason = `"><img src=x onerror=alert(1)>` },
			htmlLacks: []string{"<img src=x"},
			htmlHas:   []string{"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"},
		},
		{
			name:      "link breakout through the mailbox",
			mod:       func(n *engine.Notification) { n.Mailbox = `x" onclick="alert(1)` },
			htmlLacks: []string{`onclick="alert`},
			textHas:   []string{"upn=x%22+onclick%3D%22alert%281%29&"},
		},
		{
			name:     "terminal escapes and controls",
			mod:      func(n *engine.Notification) { n.DeviceModel = "\x1b[31mRED\x1b[0m\x07 Phone\x00\u202e" },
			textHas:  []string{"Device:      RED Phone ("},
			anyLacks: []string{"\x1b", "\x07", "\x00", "\u202e", "[31m"},
		},
		{
			name:     "oversized model is cut",
			mod:      func(n *engine.Notification) { n.DeviceModel = strings.Repeat("M", 10_000) },
			textHas:  []string{strings.Repeat("M", maxFieldRunes-1) + "…"},
			anyLacks: []string{strings.Repeat("M", maxFieldRunes+1)},
		},
		{
			name:     "invalid utf-8",
			mod:      func(n *engine.Notification) { n.DeviceModel = "Nokia\xff\xfe" },
			textHas:  []string{"Nokia\uFFFD ("}, // a run of bad bytes becomes one U+FFFD
			anyLacks: []string{"\xff"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := notification()
			tt.mod(&n)
			r, err := m.Render(n)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.htmlLacks {
				if strings.Contains(r.HTML, s) {
					t.Errorf("HTML has %q", s)
				}
			}
			for _, s := range tt.htmlHas {
				if !strings.Contains(r.HTML, s) {
					t.Errorf("HTML lacks %q", s)
				}
			}
			for _, s := range tt.textHas {
				if !strings.Contains(r.Text, s) {
					t.Errorf("Text lacks %q:\n%s", s, r.Text)
				}
			}
			for _, s := range tt.anyLacks {
				if strings.Contains(r.Subject+r.Text+r.HTML, s) {
					t.Errorf("rendering has %q", s)
				}
			}
			if strings.ContainsAny(r.Subject, "\r\n") {
				t.Errorf("Subject spans lines: %q", r.Subject)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		want     error
		contains string
	}{
		{name: "template that does not parse", cfg: Config{TemplateFile: "testdata/broken.tmpl"}, want: ErrTemplate, contains: "testdata/broken.tmpl"},
		{name: "template without a text block", cfg: Config{TemplateFile: "testdata/no-text.tmpl"}, want: ErrTemplate, contains: `"text"`},
		{name: "template naming a field that does not exist", cfg: Config{TemplateFile: "testdata/bad-field.tmpl"}, want: ErrTemplate, contains: "DisplayName"},
		{name: "template with an empty subject", cfg: Config{TemplateFile: "testdata/empty-subject.tmpl"}, want: ErrTemplate, contains: "subject is empty"},
		{name: "template file missing", cfg: Config{TemplateFile: "testdata/nope.tmpl"}, want: ErrTemplate, contains: "nope.tmpl"},
		{name: "enrollment url that does not parse", cfg: Config{EnrollmentURL: "https://x/?u={{.Mailbox"}, want: ErrConfig},
		{name: "enrollment url naming a missing field", cfg: Config{EnrollmentURL: "https://x/?u={{.UPN}}"}, want: ErrTemplate, contains: "UPN"},
		{name: "enrollment url that is not a web link", cfg: Config{EnrollmentURL: "javascript:alert(1)"}, want: ErrConfig},
		{name: "enrollment url without a host", cfg: Config{EnrollmentURL: "/enroll"}, want: ErrConfig},
		{name: "no host", cfg: Config{Host: " "}, want: ErrConfig},
		{name: "host with a scheme", cfg: Config{Host: "smtp://mail.contoso.com"}, want: ErrConfig},
		{name: "port out of range", cfg: Config{Port: 70000}, want: ErrConfig},
		{name: "bad from", cfg: Config{From: "IT mobile-at-contoso"}, want: ErrConfig},
		{name: "from with a line break", cfg: Config{From: "it@contoso.com\r\nBcc: evil@x"}, want: ErrConfig},
		{name: "credentials without starttls", cfg: Config{Username: "svc", Password: testPassword}, want: ErrConfig, contains: "clear text"},
		{name: "password without username", cfg: Config{StartTLS: true, Password: testPassword}, want: ErrConfig},
		{name: "negative timeout", cfg: Config{Timeout: -time.Second}, want: ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Host == "" {
				cfg.Host = "smtp.contoso.com"
			}
			if cfg.From == "" {
				cfg.From = "it@contoso.com"
			}
			_, err := New(cfg, slog.New(slog.DiscardHandler))
			if !errors.Is(err, tt.want) {
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q lacks %q", err, tt.contains)
			}
			if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
				t.Errorf("error reveals the password")
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantPort int
	}{
		{name: "submission with starttls", cfg: Config{StartTLS: true}, wantPort: DefaultSubmissionPort},
		{name: "relay without", cfg: Config{}, wantPort: DefaultRelayPort},
		{name: "explicit port", cfg: Config{Port: 2525}, wantPort: 2525},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := renderer(t, tt.cfg)
			if m.cfg.Port != tt.wantPort || m.cfg.Timeout != DefaultTimeout || m.cfg.EnrollmentURL != DefaultEnrollmentURL {
				t.Errorf("port %d timeout %v url %q", m.cfg.Port, m.cfg.Timeout, m.cfg.EnrollmentURL)
			}
			if m.tls.MinVersion < 0x0303 || m.tls.InsecureSkipVerify || m.tls.ServerName != "smtp.contoso.com" {
				t.Errorf("TLS config = min %x skip %v name %q, want TLS 1.2+, verified, for the host", m.tls.MinVersion, m.tls.InsecureSkipVerify, m.tls.ServerName)
			}
		})
	}
}

func TestConfigNeverShowsPassword(t *testing.T) {
	cfg := Config{Host: "smtp.contoso.com", StartTLS: true, Username: "svc", Password: testPassword, From: "it@contoso.com"}
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("config", "notify", cfg)
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "notify", cfg)
	b.WriteString(cfg.String())
	if strings.Contains(b.String(), testPassword) {
		t.Errorf("password shown: %s", b.String())
	}
	if !strings.Contains(b.String(), "smtp.contoso.com") {
		t.Errorf("config not shown at all: %s", b.String())
	}
}

func TestDefaultTemplateIsTheEmbeddedFile(t *testing.T) {
	b, err := os.ReadFile("default.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if DefaultTemplate() != string(b) {
		t.Error("DefaultTemplate differs from default.tmpl")
	}
	// An admin's copy of the default renders exactly as the built-in one.
	dir := t.TempDir()
	path := filepath.Join(dir, "copy.tmpl")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	builtIn, err := renderer(t, Config{}).Render(notification())
	if err != nil {
		t.Fatal(err)
	}
	copied, err := renderer(t, Config{TemplateFile: path}).Render(notification())
	if err != nil {
		t.Fatal(err)
	}
	if builtIn != copied {
		t.Error("a copy of the default template renders differently")
	}
}
