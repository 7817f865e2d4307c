package smtp

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// maxDepth bounds nested multiparts, so a hostile message cannot recurse
// without end.
const maxDepth = 8

// parseMessage splits a received message into headers, subject and its
// first text/plain and text/html parts. It never fails: what cannot be
// parsed is reported in ParseError and the raw bytes are kept.
func parseMessage(raw []byte) Message {
	m := Message{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.ParseError = fmt.Sprintf("read headers: %v", err)
		return m
	}
	m.Header = msg.Header
	dec := new(mime.WordDecoder)
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = subj
	} else {
		m.Subject = msg.Header.Get("Subject")
	}
	p := partParser{msg: &m}
	if err := p.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"),
		msg.Header.Get("Content-Disposition"), msg.Body, 0); err != nil {
		m.ParseError = err.Error()
	}
	return m
}

type partParser struct{ msg *Message }

func (p partParser) walk(contentType, encoding, disposition string, body io.Reader, depth int) error {
	mediaType, params := "text/plain", map[string]string{}
	if contentType != "" {
		var err error
		mediaType, params, err = mime.ParseMediaType(contentType)
		if err != nil {
			return fmt.Errorf("content type %q: %w", contentType, err)
		}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			return fmt.Errorf("multipart nested deeper than %d", maxDepth)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s part: %w", mediaType, err)
			}
			err = p.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"),
				part.Header.Get("Content-Disposition"), part, depth+1)
			if err != nil {
				return err
			}
		}
	}
	if d, _, _ := mime.ParseMediaType(disposition); d == "attachment" {
		return nil
	}
	var dst *string
	switch mediaType {
	case "text/plain":
		dst = &p.msg.Text
	case "text/html":
		dst = &p.msg.HTML
	default:
		return nil
	}
	if *dst != "" {
		return nil // the first part of each kind wins
	}
	text, err := decodeBody(body, encoding)
	if err != nil {
		return fmt.Errorf("decode %s part: %w", mediaType, err)
	}
	*dst = strings.ReplaceAll(text, "\r\n", "\n")
	return nil
}

// decodeBody undoes a part's Content-Transfer-Encoding. Charsets are not
// converted: easgate's mail is UTF-8.
func decodeBody(r io.Reader, encoding string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // ignores line breaks
	}
	b, err := io.ReadAll(r)
	return string(b), err
}
