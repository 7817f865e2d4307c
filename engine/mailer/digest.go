package mailer

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"text/template"
	"time"

	"easgate/engine"
)

//go:embed digest.tmpl
var digestTemplate string

var digestTmpl = template.Must(template.New("digest").Parse(digestTemplate))

var _ engine.DigestSender = (*Mailer)(nil)

// digestData is what the digest template sees; device fields are cleaned
// like a notification's.
type digestData struct {
	Run     engine.Run
	Started string
	Total   int
	Blocked []engine.DigestDevice
	More    int
}

// renderDigest renders the admin digest: plain text, one template.
func renderDigest(d engine.Digest) (Message, error) {
	data := digestData{Run: d.Run, Started: d.Run.Started.UTC().Format(time.RFC1123), Total: len(d.Blocked) + d.More, More: d.More}
	data.Run.ID = cleanLine(d.Run.ID, maxFieldRunes)
	for _, b := range d.Blocked {
		data.Blocked = append(data.Blocked, engine.DigestDevice{
			Mailbox: cleanLine(b.Mailbox, maxFieldRunes), DeviceID: cleanLine(b.DeviceID, maxFieldRunes),
			DeviceModel: cleanLine(b.DeviceModel, maxFieldRunes), Reason: cleanLine(b.Reason, 4*maxFieldRunes),
		})
	}
	var subject, text strings.Builder
	if err := digestTmpl.ExecuteTemplate(&subject, "subject", data); err != nil {
		return Message{}, fmt.Errorf("%w: digest subject: %w", ErrTemplate, err)
	}
	if err := digestTmpl.ExecuteTemplate(&text, "text", data); err != nil {
		return Message{}, fmt.Errorf("%w: digest text: %w", ErrTemplate, err)
	}
	return Message{Subject: cleanLine(subject.String(), 4*maxFieldRunes), Text: text.String()}, nil
}

// SendDigest mails the admin digest to each recipient.
func (m *Mailer) SendDigest(ctx context.Context, d engine.Digest) error {
	msg, err := renderDigest(d)
	if err != nil {
		return err
	}
	var failed []string
	for _, addr := range d.To {
		to, err := recipient(addr)
		if err == nil {
			err = m.deliver(ctx, m.message(to, msg), to.Address)
		}
		if err != nil {
			m.log.Warn("admin digest failed", keyTo, addr, keyErr, err)
			failed = append(failed, fmt.Sprintf("%s: %v", cleanLine(addr, maxFieldRunes), err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("admin digest: %s", strings.Join(failed, "; "))
	}
	m.log.Info("admin digest sent", keyTo, strings.Join(d.To, ","), "devices", len(d.Blocked)+d.More)
	return nil
}
