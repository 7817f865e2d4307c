package mailer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	smtpsink "easgate/engine/sim/smtp"
)

// tlsMailer returns a mailer that sends over STARTTLS with AUTH to a sink
// that requires both, as Exchange's receive connectors do.
func tlsMailer(t *testing.T) (*Mailer, *smtpsink.Sink) {
	t.Helper()
	opts, roots, _ := tlsFixture(t)
	opts.RequireTLS, opts.Username, opts.Password = true, testUser, testPassword
	s := startSink(t, opts)
	cfg := config(s)
	cfg.StartTLS, cfg.RootCAs, cfg.Username, cfg.Password = true, roots, testUser, testPassword
	m := newMailer(t, cfg)
	t.Cleanup(func() { _ = m.Close() })
	return m, s
}

func TestSendsReuseConnections(t *testing.T) {
	tests := []struct {
		name     string
		mails    int
		parallel int
	}{
		{name: "one at a time", mails: 45, parallel: 1},
		{name: "four at a time", mails: 200, parallel: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := tlsMailer(t)
			var wg sync.WaitGroup
			errs := make(chan error, tt.mails)
			sem := make(chan struct{}, tt.parallel)
			for i := range tt.mails {
				n := notification()
				n.To = fmt.Sprintf("user%d@contoso.com", i)
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					errs <- m.Send(context.Background(), n)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			st := s.Stats()
			if st.Messages != int64(tt.mails) {
				t.Errorf("sink accepted %d messages, want %d", st.Messages, tt.mails)
			}
			// Each connection carries up to connMaxMessages; concurrent
			// sends may each open one more.
			most := int64((tt.mails+connMaxMessages-1)/connMaxMessages + tt.parallel)
			if st.TLSSessions > most || st.TLSSessions < int64((tt.mails+connMaxMessages-1)/connMaxMessages) {
				t.Errorf("%d TLS sessions for %d mails, want at most %d and a new one every %d mails", st.TLSSessions, tt.mails, most, connMaxMessages)
			}
			// Every connection after the first resumes a TLS session: only
			// connections opened at once, before any session was cached,
			// do a full handshake.
			if full := st.TLSSessions - st.Resumed; full < 1 || full > int64(tt.parallel) {
				t.Errorf("%d of %d TLS sessions were full handshakes, want 1 to %d", full, st.TLSSessions, tt.parallel)
			}
		})
	}
}

func TestSendAfterTheServerDroppedAnIdleConnection(t *testing.T) {
	m, s := tlsMailer(t)
	ctx := context.Background()
	if err := m.Send(ctx, notification()); err != nil {
		t.Fatal(err)
	}
	// The sink goes down and comes back: the kept connection is dead.
	if err := s.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctx, notification()); err != nil {
		t.Fatalf("send over a dropped connection: %v", err)
	}
	if st := s.Stats(); st.Messages != 2 || st.TLSSessions != 2 {
		t.Errorf("%d messages over %d TLS sessions, want 2 over 2 (a new connection after the drop)", st.Messages, st.TLSSessions)
	}
}

func TestMailFromRefusedIsNotSentAgain(t *testing.T) {
	m, s := tlsMailer(t)
	ctx := context.Background()
	if err := m.Send(ctx, notification()); err != nil {
		t.Fatal(err)
	}
	// A reply to MAIL FROM is the server's answer, not a dead connection:
	// the message must not go out again over another one.
	s.SetBackPressure(true)
	err := m.Send(ctx, notification())
	if !errors.Is(err, ErrTransient) {
		t.Fatalf("send under back pressure: %v, want a transient failure", err)
	}
	if st := s.Stats(); st.Messages != 1 || st.TLSSessions != 1 {
		t.Errorf("%d messages over %d TLS sessions, want 1 over 1: a refusal is not retried on a new connection", st.Messages, st.TLSSessions)
	}
}

func TestCloseEndsIdleConnections(t *testing.T) {
	m, s := tlsMailer(t)
	ctx := context.Background()
	if err := m.Send(ctx, notification()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if len(m.pool.idle) != 0 {
		t.Errorf("%d idle connections after Close", len(m.pool.idle))
	}
	if err := m.Send(ctx, notification()); err != nil {
		t.Fatalf("send after Close: %v", err)
	}
	if st := s.Stats(); st.TLSSessions != 2 {
		t.Errorf("%d TLS sessions, want a new one after Close", st.TLSSessions)
	}
}
