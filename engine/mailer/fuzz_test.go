package mailer

import (
	"io"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"

	"easgate/engine"
)

// What the built-in template's HTML may contain: untrusted fields must never
// add a tag, an attribute or a link.
var (
	allowedTags  = map[string]bool{"html": true, "head": true, "meta": true, "title": true, "body": true, "p": true, "strong": true, "table": true, "tr": true, "td": true, "code": true, "a": true}
	allowedAttrs = map[string]bool{"lang": true, "charset": true, "style": true, "href": true}
)

// FuzzRender renders the built-in template with hostile device fields
// (seed corpus in testdata/fuzz/FuzzRender) and checks that nothing they
// hold reaches the mail as a control character, a line break in the
// subject, or markup.
func FuzzRender(f *testing.F) {
	m, err := New(Config{Host: "smtp.contoso.com", From: "it@contoso.com", EnrollmentURL: testURL}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("anna@contoso.com", "ApplF17XK2L9Q4MN", "iPhone", "iPhone15C2", "iOS 17.5.1", "not enrolled", uint8(1), false)
	accesses := []engine.Access{engine.AccessNone, engine.AccessBlock, engine.AccessQuarantine, engine.AccessAllow}
	f.Fuzz(func(t *testing.T, mailbox, deviceID, deviceType, deviceModel, deviceOS, reason string, access uint8, resend bool) {
		n := engine.Notification{
			Device: engine.KeyOf(mailbox, deviceID), Mailbox: mailbox, To: mailbox, DeviceID: deviceID,
			DeviceType: deviceType, DeviceModel: deviceModel, DeviceOS: deviceOS, Reason: reason,
			Access: accesses[int(access)%len(accesses)], Resend: resend,
		}
		r, err := m.Render(n)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		for part, s := range map[string]string{"subject": r.Subject, "text": r.Text, "html": r.HTML} {
			if !utf8.ValidString(s) {
				t.Errorf("%s is not valid UTF-8", part)
			}
			if strings.ContainsFunc(s, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }) {
				t.Errorf("%s holds a control character: %q", part, s)
			}
		}
		if r.Subject == "" || strings.ContainsAny(r.Subject, "\n\t") || utf8.RuneCountInString(r.Subject) > maxSubjectRunes {
			t.Errorf("subject %q: want one non-empty line of at most %d characters", r.Subject, maxSubjectRunes)
		}
		checkMarkup(t, r.HTML)
	})
}

func checkMarkup(t *testing.T, doc string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(doc))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("HTML does not tokenize: %v", z.Err())
			}
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if !allowedTags[tok.Data] {
				t.Errorf("HTML has a <%s> tag the template does not write", tok.Data)
			}
			for _, a := range tok.Attr {
				if !allowedAttrs[a.Key] {
					t.Errorf("HTML has an attribute %s=%q the template does not write", a.Key, a.Val)
				}
				if a.Key == "href" && !strings.HasPrefix(a.Val, "https://portal.example.com/enroll?upn=") {
					t.Errorf("HTML links to %q", a.Val)
				}
			}
		}
	}
}
