package mailer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// scripted is an SMTP server of a few lines for tests of the command
// stream itself: it greets, answers EHLO with the given extensions, and
// hands the session to serve, which answers the mail transaction.
func scripted(t *testing.T, extensions []string, serve func(r *bufio.Reader, w *bufio.Writer) error) Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		if err := reply(w, "220 mail.contoso.com ESMTP"); err != nil {
			done <- err
			return
		}
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "EHLO ") {
			done <- fmt.Errorf("want EHLO, got %q (%v)", l, err)
			return
		}
		ehlo := []string{"250-mail.contoso.com"}
		for _, e := range extensions {
			ehlo = append(ehlo, "250-"+e)
		}
		ehlo = append(ehlo, "250 SIZE 37748736")
		if err := reply(w, ehlo...); err != nil {
			done <- err
			return
		}
		done <- serve(r, w)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	addr := ln.Addr().(*net.TCPAddr)
	return Config{Host: "127.0.0.1", Port: addr.Port, From: "IT <mobile@contoso.com>", EnrollmentURL: testURL, Timeout: 5 * time.Second}
}

// reply writes reply lines and flushes them.
func reply(w *bufio.Writer, lines ...string) error {
	for _, l := range lines {
		_, _ = w.WriteString(l + "\r\n")
	}
	return w.Flush()
}

// endSession expects QUIT (or the connection closing) and answers it.
func endSession(r *bufio.Reader, w *bufio.Writer, after string) error {
	l, err := readLine(r)
	if err != nil {
		return nil
	}
	if l != "QUIT" {
		return fmt.Errorf("after %s the client sent %q, want QUIT", after, l)
	}
	return reply(w, "221 2.0.0 Closing")
}

// sendOne sends the test notification with a mailer for cfg.
func sendOne(t *testing.T, cfg Config) error {
	t.Helper()
	m := newMailer(t, cfg)
	defer func() { _ = m.Close() }()
	return m.Send(context.Background(), notification())
}

// readLine reads one command line without its line end.
func readLine(r *bufio.Reader) (string, error) {
	l, err := r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// readBody reads a message up to its lone dot.
func readBody(r *bufio.Reader) error {
	for {
		l, err := readLine(r)
		if err != nil {
			return err
		}
		if l == "." {
			return nil
		}
	}
}

func TestTransactionIsPipelined(t *testing.T) {
	cfg := scripted(t, []string{"PIPELINING", "8BITMIME"}, func(r *bufio.Reader, w *bufio.Writer) error {
		// All three commands must arrive before any reply: a client that
		// waited for the reply to MAIL FROM would stall here.
		var got []string
		for range 3 {
			l, err := readLine(r)
			if err != nil {
				return fmt.Errorf("after %q: %w", got, err)
			}
			got = append(got, l)
		}
		want := []string{"MAIL FROM:<mobile@contoso.com> BODY=8BITMIME", "RCPT TO:<anna@contoso.com>", "DATA"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			return fmt.Errorf("commands %q, want %q", got, want)
		}
		if err := reply(w, "250 2.1.0 Sender OK", "250 2.1.5 Recipient OK", "354 Start mail input"); err != nil {
			return err
		}
		if err := readBody(r); err != nil {
			return err
		}
		if err := reply(w, "250 2.6.0 Queued mail for delivery"); err != nil {
			return err
		}
		return endSession(r, w, "the message")
	})
	if err := sendOne(t, cfg); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestRefusedRecipientEndsPipelinedTransaction(t *testing.T) {
	cfg := scripted(t, []string{"PIPELINING"}, func(r *bufio.Reader, w *bufio.Writer) error {
		for range 3 {
			if _, err := readLine(r); err != nil {
				return err
			}
		}
		// RFC 2920: with no valid recipient DATA is refused, and the
		// client must not send the message.
		if err := reply(w, "250 2.1.0 Sender OK", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "503 5.5.1 No recipients"); err != nil {
			return err
		}
		return endSession(r, w, "a refused DATA")
	})
	wantRecipientRefused(t, sendOne(t, cfg))
}

// wantRecipientRefused checks that a send failed for good with the
// recipient's 550, not the 503 of the command after it.
func wantRecipientRefused(t *testing.T, err error) {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) || se.Code != 550 || se.Transient() {
		t.Fatalf("Send: %v, want a permanent failure with code 550 (the recipient's refusal)", err)
	}
}

func TestTransactionInLockstepWithoutPipelining(t *testing.T) {
	cfg := scripted(t, nil, func(r *bufio.Reader, w *bufio.Writer) error {
		for _, step := range []struct{ want, reply string }{
			{"MAIL FROM:<mobile@contoso.com>", "250 2.1.0 Sender OK"},
			{"RCPT TO:<anna@contoso.com>", "250 2.1.5 Recipient OK"},
			{"DATA", "354 Start mail input"},
		} {
			l, err := readLine(r)
			if err != nil {
				return err
			}
			if l != step.want {
				return fmt.Errorf("got %q, want %q", l, step.want)
			}
			if r.Buffered() > 0 {
				return fmt.Errorf("the next command came before the reply to %q, from a server that does not offer PIPELINING", l)
			}
			if err := reply(w, step.reply); err != nil {
				return err
			}
		}
		if err := readBody(r); err != nil {
			return err
		}
		if err := reply(w, "250 2.6.0 Queued mail for delivery"); err != nil {
			return err
		}
		return endSession(r, w, "the message")
	})
	if err := sendOne(t, cfg); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// readChunkCommands reads MAIL FROM, RCPT TO and BDAT, and the chunk the
// BDAT announces, all before any reply.
func readChunkCommands(r *bufio.Reader) (cmds []string, chunk []byte, err error) {
	for range 3 {
		l, err := readLine(r)
		if err != nil {
			return cmds, nil, fmt.Errorf("after %q: %w", cmds, err)
		}
		cmds = append(cmds, l)
	}
	var n int
	if _, err := fmt.Sscanf(cmds[2], "BDAT %d LAST", &n); err != nil {
		return cmds, nil, fmt.Errorf("third command %q, want BDAT <size> LAST", cmds[2])
	}
	chunk = make([]byte, n)
	if _, err := io.ReadFull(r, chunk); err != nil {
		return cmds, nil, fmt.Errorf("read the %d-byte chunk: %w", n, err)
	}
	return cmds, chunk, nil
}

func TestChunkedTransactionIsOneRoundTrip(t *testing.T) {
	cfg := scripted(t, []string{"PIPELINING", "CHUNKING", "8BITMIME"}, func(r *bufio.Reader, w *bufio.Writer) error {
		// Commands and message all arrive before any reply: a client that
		// waited for a reply would stall here.
		cmds, chunk, err := readChunkCommands(r)
		if err != nil {
			return err
		}
		want := []string{"MAIL FROM:<mobile@contoso.com> BODY=8BITMIME", "RCPT TO:<anna@contoso.com>"}
		if cmds[0] != want[0] || cmds[1] != want[1] {
			return fmt.Errorf("commands %q, want %q then BDAT", cmds, want)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(chunk))
		if err != nil {
			return fmt.Errorf("the chunk is not a mail: %w", err)
		}
		if msg.Header.Get("Subject") == "" || !bytes.HasSuffix(chunk, []byte("\r\n")) {
			return fmt.Errorf("the chunk lacks a subject or its final line end:\n%s", chunk)
		}
		if bytes.Count(chunk, []byte("\n")) != bytes.Count(chunk, []byte("\r\n")) {
			return errors.New("the chunk has bare line feeds; SMTP lines end in CR LF")
		}
		if err := reply(w, "250 2.1.0 Sender OK", "250 2.1.5 Recipient OK", "250 2.6.0 Queued mail for delivery"); err != nil {
			return err
		}
		return endSession(r, w, "the message")
	})
	if err := sendOne(t, cfg); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestRefusedRecipientEndsChunkedTransaction(t *testing.T) {
	cfg := scripted(t, []string{"PIPELINING", "CHUNKING"}, func(r *bufio.Reader, w *bufio.Writer) error {
		// The server reads the chunk of a refused BDAT too (RFC 3030).
		if _, _, err := readChunkCommands(r); err != nil {
			return err
		}
		if err := reply(w, "250 2.1.0 Sender OK", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "503 5.5.1 No recipients"); err != nil {
			return err
		}
		return endSession(r, w, "a refused BDAT")
	})
	wantRecipientRefused(t, sendOne(t, cfg))
}
