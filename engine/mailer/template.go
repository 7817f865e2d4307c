package mailer

import (
	"bytes"
	_ "embed"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"
	"unicode"

	"easgate/engine"
)

//go:embed default.tmpl
var defaultTemplate string

// DefaultTemplate returns the built-in notification template, for an admin
// to copy and change (notify.template_file).
func DefaultTemplate() string { return defaultTemplate }

// DefaultEnrollmentURL is the Intune Company Portal website, used when the
// configuration names no enrollment URL.
const DefaultEnrollmentURL = "https://portal.manage.microsoft.com/"

// The template's blocks.
const (
	blockSubject = "subject"
	blockText    = "text"
	blockHTML    = "html"
)

// Platforms a notification's device can be recognised as.
const (
	PlatformIOS     = "ios"
	PlatformSamsung = "samsung" // Samsung Email on Android, which reports its EAS ID to Intune
	PlatformAndroid = "android" // any other Android mail app, which does not
	PlatformWindows = "windows"
	PlatformOther   = "other"
)

// Message is a rendered notification.
type Message struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html,omitempty"` // empty when the template has no "html" block
}

// Data is what the notification template sees. Every string has been
// cleaned: no control characters, escape sequences or line breaks, at most
// 256 characters.
type Data struct {
	To          string // the recipient address
	Mailbox     string // the mailbox's UPN
	DeviceID    string
	DeviceType  string
	DeviceModel string
	DeviceOS    string
	// Device names the device for a person: its model, else its type, else
	// "mobile device".
	Device string
	// Platform is one of the Platform constants.
	Platform string
	// EnrollFromDevice is true for Android devices other than Samsung's:
	// they never report their EAS device ID to Intune, so the user must
	// start the enrollment from this mail on the device itself.
	EnrollFromDevice bool
	FirstSync        time.Time // when Exchange first saw the device
	// Access is what will happen to the device: "block", "quarantine",
	// "allow" or "none"; Blocked and Quarantined say the same as flags.
	Access      string
	Blocked     bool
	Quarantined bool
	Reason      string // why, in the engine's words (for a helpdesk)
	Resend      bool   // a reminder of an earlier notification
	// EnrollmentURL is the rendered enrollment link. It is empty while the
	// link itself is rendered.
	EnrollmentURL string
}

// newData cleans a notification's untrusted fields into template data.
func newData(n engine.Notification) Data {
	c := func(s string) string { return cleanLine(s, maxFieldRunes) }
	d := Data{
		To:          c(n.To),
		Mailbox:     c(n.Mailbox),
		DeviceID:    c(n.DeviceID),
		DeviceType:  c(n.DeviceType),
		DeviceModel: c(n.DeviceModel),
		DeviceOS:    c(n.DeviceOS),
		FirstSync:   n.FirstSync,
		Access:      c(string(n.Access)),
		Blocked:     n.Access == engine.AccessBlock,
		Quarantined: n.Access == engine.AccessQuarantine,
		Reason:      c(n.Reason),
		Resend:      n.Resend,
	}
	switch {
	case d.DeviceModel != "":
		d.Device = d.DeviceModel
	case d.DeviceType != "":
		d.Device = d.DeviceType
	default:
		d.Device = "mobile device"
	}
	d.Platform = platformOf(d.DeviceType, d.DeviceOS)
	d.EnrollFromDevice = d.Platform == PlatformAndroid
	return d
}

// platformOf recognises a device's platform from what Exchange reports.
// Samsung Email names its device type SAMSUNG<model>; Gmail and other
// Android mail apps report "Android", even on a Samsung phone, and do not
// report the EAS ID to Intune.
func platformOf(deviceType, deviceOS string) string {
	t, o := strings.ToLower(deviceType), strings.ToLower(deviceOS)
	switch {
	case strings.HasPrefix(t, "iphone"), strings.HasPrefix(t, "ipad"), strings.HasPrefix(t, "ipod"),
		strings.HasPrefix(o, "ios"), strings.HasPrefix(o, "ipados"):
		return PlatformIOS
	case strings.HasPrefix(t, "samsung"):
		return PlatformSamsung
	case strings.Contains(t, "android"), strings.HasPrefix(o, "android"):
		return PlatformAndroid
	case strings.HasPrefix(t, "windows"), strings.HasPrefix(t, "wp"), strings.HasPrefix(o, "windows"):
		return PlatformWindows
	}
	return PlatformOther
}

// queryEscaped is d with every string escaped for a URL query, for
// rendering the enrollment URL template.
func (d Data) queryEscaped() Data {
	q := url.QueryEscape
	d.To, d.Mailbox, d.DeviceID = q(d.To), q(d.Mailbox), q(d.DeviceID)
	d.DeviceType, d.DeviceModel, d.DeviceOS = q(d.DeviceType), q(d.DeviceModel), q(d.DeviceOS)
	d.Device, d.Platform, d.Access, d.Reason = q(d.Device), q(d.Platform), q(d.Access), q(d.Reason)
	d.EnrollmentURL = ""
	return d
}

var funcs = map[string]any{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "unknown"
		}
		return t.UTC().Format("2 January 2006")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "unknown"
		}
		return t.UTC().Format("2 January 2006 15:04 UTC")
	},
}

// templates is a parsed notification template and enrollment URL.
type templates struct {
	source string // file name, or "built-in template", for errors
	text   *texttemplate.Template
	html   *htmltemplate.Template // nil: no "html" block
	url    *texttemplate.Template
}

// parseTemplates parses the notification template src (named source in
// errors) and the enrollment URL template.
func parseTemplates(source, src, enrollmentURL string) (*templates, error) {
	text, err := texttemplate.New(source).Funcs(funcs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", source, ErrTemplate, err)
	}
	for _, block := range []string{blockSubject, blockText} {
		if text.Lookup(block) == nil {
			return nil, fmt.Errorf("parse %s: %w: no {{define %q}} block", source, ErrTemplate, block)
		}
	}
	t := &templates{source: source, text: text}
	if text.Lookup(blockHTML) != nil {
		t.html, err = htmltemplate.New(source).Funcs(funcs).Parse(src)
		if err != nil {
			return nil, fmt.Errorf("parse %s for html: %w: %w", source, ErrTemplate, err)
		}
	}
	t.url, err = texttemplate.New("enrollment_url").Funcs(funcs).Parse(enrollmentURL)
	if err != nil {
		return nil, fmt.Errorf("parse enrollment_url: %w: %w", ErrConfig, err)
	}
	return t, nil
}

// renderBuffers hold a rendering's text between mails; the strings taken
// from them are copies.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render renders a notification. Its errors wrap ErrTemplate, or ErrConfig
// for an enrollment URL that renders to something that is not a web link.
func (t *templates) render(n engine.Notification) (Message, error) {
	d := newData(n)
	b := renderBuffers.Get().(*bytes.Buffer)
	defer renderBuffers.Put(b)
	b.Reset()
	if err := t.url.Execute(b, d.queryEscaped()); err != nil {
		return Message{}, fmt.Errorf("render enrollment_url: %w: %w", ErrTemplate, err)
	}
	link, err := checkLink(b.String())
	if err != nil {
		return Message{}, err
	}
	d.EnrollmentURL = link

	var m Message
	b.Reset()
	if err := t.text.ExecuteTemplate(b, blockSubject, d); err != nil {
		return Message{}, fmt.Errorf("render %q block of %s: %w: %w", blockSubject, t.source, ErrTemplate, err)
	}
	if m.Subject = cleanLine(b.String(), maxSubjectRunes); m.Subject == "" {
		return Message{}, fmt.Errorf("render %q block of %s: %w: the subject is empty", blockSubject, t.source, ErrTemplate)
	}
	b.Reset()
	if err := t.text.ExecuteTemplate(b, blockText, d); err != nil {
		return Message{}, fmt.Errorf("render %q block of %s: %w: %w", blockText, t.source, ErrTemplate, err)
	}
	if m.Text = strings.TrimSpace(cleanText(b.String())); m.Text == "" {
		return Message{}, fmt.Errorf("render %q block of %s: %w: the text is empty", blockText, t.source, ErrTemplate)
	}
	m.Text += "\n"
	if t.html != nil {
		b.Reset()
		if err := t.html.ExecuteTemplate(b, blockHTML, d); err != nil {
			return Message{}, fmt.Errorf("render %q block of %s: %w: %w", blockHTML, t.source, ErrTemplate, err)
		}
		m.HTML = b.String()
	}
	return m, nil
}

// checkLink accepts a rendered enrollment URL only if it is an absolute
// http or https link without white space.
func checkLink(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", fmt.Errorf("enrollment_url renders to %q: %w: want an absolute http or https URL", s, ErrConfig)
	}
	return s, nil
}

// samples are the notifications New renders to prove a template works
// before the first real run needs it.
func samples() []engine.Notification {
	first := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	return []engine.Notification{
		{
			Device: engine.KeyOf("anna.schmidt@contoso.com", "ApplF17XK2L9Q4MN"), Mailbox: "anna.schmidt@contoso.com",
			To: "anna.schmidt@contoso.com", DeviceID: "ApplF17XK2L9Q4MN", DeviceType: "iPhone", DeviceModel: "iPhone15C2",
			DeviceOS: "iOS 17.5.1 21F90", FirstSync: first, Access: engine.AccessBlock,
			Reason: "not enrolled in Intune (no MDM record with EAS ID ApplF17XK2L9Q4MN)",
		},
		{
			Device: engine.KeyOf("ben.novak@contoso.com", "androidc1234567890"), Mailbox: "ben.novak@contoso.com",
			To: "ben.novak@contoso.com", DeviceID: "androidc1234567890", DeviceType: "Android", DeviceModel: "Pixel 8",
			DeviceOS: "Android 14", FirstSync: first, Access: engine.AccessQuarantine, Resend: true,
			Reason: "not enrolled in Intune (no MDM record with EAS ID androidc1234567890)",
		},
		{
			Device: engine.KeyOf("chloe@contoso.com", "SEC1A2B3C4D5E6F7"), Mailbox: "chloe@contoso.com",
			To: "chloe@contoso.com", DeviceID: "SEC1A2B3C4D5E6F7", DeviceType: "SAMSUNGSMS911B", Access: engine.AccessNone,
		},
	}
}
