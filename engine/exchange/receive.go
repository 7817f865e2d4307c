package exchange

import (
	"bytes"
	"encoding/base64"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// A Receive answer carries a command's output as base64 text in
// rsp:Stream elements, up to EnvelopeSize bytes an answer. The WinRM
// library reads every answer by building an XPath tree of the whole
// envelope, base64 text included, one character at a time: at 100,000
// mailboxes that was 2.2 s of CPU and 1.3 GB of garbage, the largest single
// cost of a full sync. The transport therefore lifts the streams out of
// each answer on its way to the library, the way the Graph adapter decodes
// page bodies itself: the library still sends every request and reads the
// command's state and exit code from what is left, and the decoded output
// reaches the runner through a pipe of its own (commandOutput).
//
// liftStreams only takes an answer it reads exactly as the library would;
// anything else (a comment, a CDATA section, a namespace declared twice, a
// stream that is not plain base64) goes to the library untouched, and so
// does every later answer of that command: the library's output reaches
// the runner through a goroutine (follow), and output lifted from a later
// answer could overtake it.

// shellNamespace is the namespace of the rsp:Stream elements the library
// reads.
const shellNamespace = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"

// commandOutput is where one command's output goes: the runner reads the
// pipes, and the transport and the library's own readers write them.
type commandOutput struct {
	stdoutR, stderrR *io.PipeReader
	stdoutW, stderrW *io.PipeWriter
	// library is set once an answer went to the library whole; the
	// command's later answers follow it there.
	library atomic.Bool
}

func newCommandOutput() *commandOutput {
	o := &commandOutput{}
	o.stdoutR, o.stdoutW = io.Pipe()
	o.stderrR, o.stderrW = io.Pipe()
	return o
}

// follow copies what the library still writes to the command's own
// readers (answers it was handed untouched) and closes each pipe as the
// library closes its reader: at the end of the output, or with the error
// that ended it.
func (o *commandOutput) follow(stdout, stderr io.Reader) {
	forward := func(w *io.PipeWriter, r io.Reader) {
		_, err := io.Copy(w, r)
		_ = w.CloseWithError(err)
	}
	go forward(o.stdoutW, stdout)
	go forward(o.stderrW, stderr)
}

// close ends the runner's side: a write after it fails instead of waiting
// for a reader.
func (o *commandOutput) close() {
	_ = o.stdoutR.CloseWithError(io.ErrClosedPipe)
	_ = o.stderrR.CloseWithError(io.ErrClosedPipe)
}

// deliver lifts the streams out of a Receive answer and writes them to
// the command's pipes, stdout first as the library does; the writes return
// once the runner has read them, before the library sees the answer. It
// returns what the library is to read: the answer without its streams, or
// the answer as it came.
func (o *commandOutput) deliver(answer []byte) string {
	if o.library.Load() {
		return string(answer)
	}
	buf := streamBuffers.Get().(*streamBuffer)
	defer streamBuffers.Put(buf)
	rest, ok := liftStreams(answer, buf)
	if !ok {
		o.library.Store(true)
		return string(answer)
	}
	// A write fails only once the runner stopped reading, which the
	// library's own pipes ignore too.
	if len(buf.stdout) > 0 {
		_, _ = o.stdoutW.Write(buf.stdout)
	}
	if len(buf.stderr) > 0 {
		_, _ = o.stderrW.Write(buf.stderr)
	}
	return rest
}

// streamBuffer holds one answer's decoded streams.
type streamBuffer struct{ stdout, stderr []byte }

var streamBuffers = sync.Pool{New: func() any { return new(streamBuffer) }}

// xmlScope is one open element: its name and namespace declarations.
type xmlScope struct {
	name     string
	bindings int // how many of the namespace stack's entries it declared
}

// liftStreams decodes the stdout and stderr rsp:Stream elements of answer
// into buf and returns the answer without them. ok is false, and nothing
// is to be trusted, when answer holds anything whose reading it cannot
// vouch for.
func liftStreams(answer []byte, buf *streamBuffer) (rest string, ok bool) {
	buf.stdout, buf.stderr = buf.stdout[:0], buf.stderr[:0]
	var (
		spans [][2]int // the stream elements, in order
		ns    []nsBinding
		open  []xmlScope
		roots int
	)
	i := 0
	if bytes.HasPrefix(answer, []byte("<?xml")) {
		end := bytes.Index(answer, []byte("?>"))
		if end < 0 {
			return "", false
		}
		// The library decodes other character sets; this reader does not.
		if decl := bytes.ToLower(answer[:end]); bytes.Contains(decl, []byte("encoding")) &&
			!bytes.Contains(decl, []byte(`"utf-8"`)) && !bytes.Contains(decl, []byte(`'utf-8'`)) {
			return "", false
		}
		i = end + 2
	}
	for {
		j := bytes.IndexByte(answer[i:], '<')
		if j < 0 {
			break
		}
		j += i
		if j+1 >= len(answer) {
			return "", false
		}
		switch answer[j+1] {
		case '?', '!': // a processing instruction, comment, CDATA or DOCTYPE
			return "", false
		case '/':
			end, name, good := endTag(answer, j)
			if !good || len(open) == 0 || open[len(open)-1].name != name {
				return "", false
			}
			top := open[len(open)-1]
			open = open[:len(open)-1]
			ns = ns[:len(ns)-top.bindings]
			i = end
			continue
		}
		t, good := startTag(answer, j)
		if !good {
			return "", false
		}
		scope := xmlScope{name: t.name}
		for _, a := range t.attrs {
			prefix, declares := strings.CutPrefix(a.name, "xmlns")
			if !declares {
				continue
			}
			if prefix == "" { // the default namespace
				if a.value == shellNamespace {
					return "", false // an unprefixed Stream would be the library's too
				}
				continue
			}
			if prefix[0] != ':' {
				continue // an attribute that merely starts with xmlns
			}
			ns = append(ns, nsBinding{prefix: prefix[1:], uri: a.value})
			scope.bindings++
		}
		if len(open) == 0 {
			roots++
			if roots > 1 {
				return "", false
			}
		}
		if stream, isStream := t.stream(ns); isStream {
			if len(open) == 0 || scope.bindings > 0 {
				return "", false
			}
			if stream == "" {
				// A Stream of another name: the library leaves it, and so
				// does this reader.
			} else {
				end, good := streamContent(answer, t, buf, stream)
				if !good {
					return "", false
				}
				spans = append(spans, [2]int{j, end})
				i = end
				continue
			}
		}
		i = t.end
		if !t.empty {
			open = append(open, scope)
		} else {
			ns = ns[:len(ns)-scope.bindings]
		}
	}
	if len(open) != 0 || roots != 1 {
		return "", false
	}
	var b strings.Builder
	removed := 0
	for _, s := range spans {
		removed += s[1] - s[0]
	}
	b.Grow(len(answer) - removed)
	last := 0
	for _, s := range spans {
		b.Write(answer[last:s[0]])
		last = s[1]
	}
	b.Write(answer[last:])
	return b.String(), true
}

// nsBinding is a namespace prefix declared by an open element.
type nsBinding struct{ prefix, uri string }

type xmlAttr struct{ name, value string }

// xmlTag is a start tag.
type xmlTag struct {
	name  string
	attrs []xmlAttr
	end   int  // just past the tag's '>'
	empty bool // it ended with "/>"
}

// stream reports whether the tag starts a Stream element of the shell
// namespace, and which stream the library would write it to: "stdout",
// "stderr" or "" for neither.
func (t *xmlTag) stream(ns []nsBinding) (name string, isStream bool) {
	prefix, local, prefixed := strings.Cut(t.name, ":")
	if !prefixed || local != "Stream" || lookupNS(ns, prefix) != shellNamespace {
		return "", false
	}
	for _, a := range t.attrs {
		if a.name == "Name" && (a.value == "stdout" || a.value == "stderr") {
			return a.value, true
		}
	}
	return "", true
}

// lookupNS returns the URI the innermost declaration binds prefix to.
func lookupNS(ns []nsBinding, prefix string) string {
	for i := len(ns) - 1; i >= 0; i-- {
		if ns[i].prefix == prefix {
			return ns[i].uri
		}
	}
	return ""
}

// startTag reads the start tag at s[i], which is '<'. It takes only plain
// ASCII names and attribute values without references or '<'.
func startTag(s []byte, i int) (t xmlTag, ok bool) {
	p := i + 1
	n := nameLen(s[p:])
	if n == 0 {
		return t, false
	}
	t.name = string(s[p : p+n])
	p += n
	for {
		sp := spaceLen(s[p:])
		p += sp
		if p >= len(s) {
			return t, false
		}
		switch s[p] {
		case '>':
			t.end = p + 1
			return t, true
		case '/':
			if p+1 < len(s) && s[p+1] == '>' {
				t.end, t.empty = p+2, true
				return t, true
			}
			return t, false
		}
		if sp == 0 {
			return t, false // attributes are separated by white space
		}
		n := nameLen(s[p:])
		if n == 0 {
			return t, false
		}
		name := string(s[p : p+n])
		p += n
		p += spaceLen(s[p:])
		if p >= len(s) || s[p] != '=' {
			return t, false
		}
		p++
		p += spaceLen(s[p:])
		if p >= len(s) || (s[p] != '"' && s[p] != '\'') {
			return t, false
		}
		q := bytes.IndexByte(s[p+1:], s[p])
		if q < 0 {
			return t, false
		}
		value := string(s[p+1 : p+1+q])
		if strings.ContainsAny(value, "<&") {
			return t, false
		}
		for _, a := range t.attrs {
			if a.name == name {
				return t, false
			}
		}
		t.attrs = append(t.attrs, xmlAttr{name: name, value: value})
		p += q + 2
	}
}

// endTag reads the end tag at s[i], which is "</".
func endTag(s []byte, i int) (end int, name string, ok bool) {
	p := i + 2
	n := nameLen(s[p:])
	if n == 0 {
		return 0, "", false
	}
	name = string(s[p : p+n])
	p += n
	p += spaceLen(s[p:])
	if p >= len(s) || s[p] != '>' {
		return 0, "", false
	}
	return p + 1, name, true
}

// streamContent decodes the content of the stream element t into buf and
// returns the index just past its end tag. The content must be base64 and
// line breaks only, the end tag t's own.
func streamContent(s []byte, t xmlTag, buf *streamBuffer, stream string) (end int, ok bool) {
	var content []byte
	end = t.end
	if !t.empty {
		close := bytes.IndexByte(s[t.end:], '<')
		if close < 0 || t.end+close+1 >= len(s) || s[t.end+close+1] != '/' {
			return 0, false
		}
		content = s[t.end : t.end+close]
		e, name, good := endTag(s, t.end+close)
		if !good || name != t.name {
			return 0, false
		}
		end = e
	}
	for k := 0; k < len(content); k++ {
		if !isBase64Byte(content[k]) {
			return 0, false
		}
	}
	dst := &buf.stdout
	if stream == "stderr" {
		dst = &buf.stderr
	}
	at := len(*dst)
	*dst = slices.Grow(*dst, base64.StdEncoding.DecodedLen(len(content)))
	n, err := base64.StdEncoding.Decode((*dst)[at:cap(*dst)], content)
	if err != nil {
		return 0, false
	}
	*dst = (*dst)[:at+n]
	return end, true
}

func isBase64Byte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '=' || c == '\r' || c == '\n'
}

// nameLen is the length of the plain ASCII XML name s starts with.
func nameLen(s []byte) int {
	n := 0
	for n < len(s) {
		c := s[n]
		letter := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':'
		if !letter && (n == 0 || !('0' <= c && c <= '9' || c == '-' || c == '.')) {
			break
		}
		n++
	}
	return n
}

func spaceLen(s []byte) int {
	n := 0
	for n < len(s) && (s[n] == ' ' || s[n] == '\t' || s[n] == '\r' || s[n] == '\n') {
		n++
	}
	return n
}
