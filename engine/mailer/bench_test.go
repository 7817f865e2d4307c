package mailer

import (
	"context"
	"testing"

	smtpsink "easgate/engine/sim/smtp"
)

func BenchmarkRender(b *testing.B) {
	m, err := New(Config{Host: "smtp.contoso.com", From: "it@contoso.com", EnrollmentURL: testURL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	n := notification()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Render(n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSend(b *testing.B) {
	serverTLS, roots, err := smtpsink.NewTestTLS("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	tests := []struct {
		name string
		sink smtpsink.Options
		cfg  func(*Config)
	}{
		{name: "plain", sink: smtpsink.Options{}},
		{
			name: "starttls+auth",
			sink: smtpsink.Options{TLSConfig: serverTLS, RequireTLS: true, Username: testUser, Password: testPassword},
			cfg: func(c *Config) {
				c.StartTLS, c.RootCAs, c.Username, c.Password = true, roots, testUser, testPassword
			},
		},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			s, err := smtpsink.Start(tt.sink)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cfg := Config{Host: s.Host(), Port: s.Port(), From: "it@contoso.com", EnrollmentURL: testURL}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			m, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			n := notification()
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Send(context.Background(), n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
