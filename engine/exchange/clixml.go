package exchange

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
)

// stderrRecords is what a PowerShell process wrote to stderr.
type stderrRecords struct {
	// Errors are the error records (CLIXML S="Error"), each as its message.
	Errors []string
	// Full are the error records as the console host renders them, with
	// position, category and error ID.
	Full []string
	// Warnings are the warning records.
	Warnings []string
	// Plain is stderr text outside CLIXML: cmd.exe's errors, and
	// powershell.exe's own before its host starts.
	Plain string
}

// message returns a readable summary of the errors, or of the plain text.
func (s *stderrRecords) message() string {
	if len(s.Errors) > 0 {
		return strings.Join(s.Errors, "; ")
	}
	return s.Plain
}

const clixmlMarker = "#< CLIXML"

// parseStderr reads a PowerShell process's stderr: CLIXML records after
// the "#< CLIXML" line (possibly cut off, when the process was killed) and
// any plain text around them. Only S="Error" records are errors; progress,
// verbose and information records are ignored.
func parseStderr(b []byte) *stderrRecords {
	s := &stderrRecords{}
	i := bytes.Index(b, []byte(clixmlMarker))
	if i < 0 {
		s.Plain = strings.TrimSpace(string(b))
		return s
	}
	plain := string(b[:i])
	doc := b[i+len(clixmlMarker):]
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = false
	var errLines []string
	flush := func() {
		if len(errLines) == 0 {
			return
		}
		msg, full := errorText(errLines)
		s.Errors = append(s.Errors, msg)
		s.Full = append(s.Full, full)
		errLines = nil
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				plain += " " + strings.TrimSpace(string(doc[min(int(dec.InputOffset()), len(doc)):]))
			}
			break
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		stream := attr(start, "S")
		switch {
		case start.Name.Local == "S":
			var text string
			if err := dec.DecodeElement(&text, &start); err != nil {
				continue
			}
			text = decodeEscapes(text)
			switch strings.ToLower(stream) {
			case "error":
				line := strings.TrimRight(text, "\r\n")
				if strings.TrimSpace(line) == "" {
					flush()
				} else {
					errLines = append(errLines, line)
				}
			case "warning":
				s.Warnings = append(s.Warnings, strings.TrimSpace(text))
			}
		case start.Name.Local == "Obj" && strings.EqualFold(stream, "error"):
			var obj struct {
				ToString string `xml:"ToString"`
			}
			if err := dec.DecodeElement(&obj, &start); err == nil && obj.ToString != "" {
				flush()
				errLines = []string{decodeEscapes(obj.ToString)}
				flush()
			}
		case start.Name.Local == "Obj":
			_ = dec.Skip() // progress and other objects
		}
	}
	flush()
	s.Plain = strings.TrimSpace(plain)
	return s
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// errorText returns an error record's message (the lines before its
// position or category, joined as the host wrapped them) and the record
// in full.
func errorText(lines []string) (msg, full string) {
	var m strings.Builder
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "At line:") || strings.HasPrefix(t, "At char:") || strings.HasPrefix(t, "+ ") || t == "+" {
			break
		}
		m.WriteString(l)
	}
	msg = strings.Join(strings.Fields(m.String()), " ")
	if msg == "" {
		msg = strings.Join(strings.Fields(strings.Join(lines, " ")), " ")
	}
	return msg, strings.Join(lines, "\n")
}

var escapeRE = regexp.MustCompile(`_x([0-9A-Fa-f]{4})_`)

// decodeEscapes undoes PowerShell's _xHHHH_ escapes of characters XML
// cannot carry (CR, LF, other control characters, lone surrogates),
// joining surrogate pairs.
func decodeEscapes(s string) string {
	if !strings.Contains(s, "_x") {
		return s
	}
	var units []uint16
	var b strings.Builder
	last := 0
	flushUnits := func() {
		if len(units) > 0 {
			b.WriteString(string(utf16.Decode(units)))
			units = nil
		}
	}
	for _, m := range escapeRE.FindAllStringSubmatchIndex(s, -1) {
		if m[0] != last {
			flushUnits()
			b.WriteString(s[last:m[0]])
		}
		v, _ := strconv.ParseUint(s[m[2]:m[3]], 16, 16)
		units = append(units, uint16(v))
		last = m[1]
	}
	flushUnits()
	b.WriteString(s[last:])
	return b.String()
}
