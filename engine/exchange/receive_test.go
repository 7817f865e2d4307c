package exchange

import (
	"bytes"
	"encoding/base64"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/masterzen/winrm"
)

// libraryRead is what the WinRM library makes of a Receive answer.
type libraryRead struct {
	stdout, stderr string
	finished       bool
	exitCode       int
	failed         bool // an error, or a panic
}

func readByLibrary(answer string) (r libraryRead) {
	defer func() {
		if recover() != nil {
			r = libraryRead{failed: true}
		}
	}()
	var stdout, stderr bytes.Buffer
	finished, code, err := winrm.ParseSlurpOutputErrResponse(answer, &stdout, &stderr)
	if err != nil {
		return libraryRead{failed: true}
	}
	return libraryRead{stdout: stdout.String(), stderr: stderr.String(), finished: finished, exitCode: code}
}

const (
	envelopeOpen = `<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" ` +
		`xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" ` +
		`xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">` +
		`<s:Header><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>` +
		`<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action>` +
		`<a:MessageID>uuid:5B1E6F1C-0C43-4C7C-8A0B-2B1E4D8E3F10</a:MessageID>` +
		`<a:RelatesTo>uuid:9A2B7A14-7A53-4C55-9A2E-1E6F0B3A7C21</a:RelatesTo></s:Header><s:Body>`
	envelopeClose = `</s:Body></s:Envelope>`
	commandID     = "1A2B3C4D-0000-4000-8000-00000000ABCD"
	stateDone     = `<rsp:CommandState CommandId="` + commandID + `" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState>`
	stateRunning  = `<rsp:CommandState CommandId="` + commandID + `" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"/>`
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func stream(name, text string) string {
	return `<rsp:Stream Name="` + name + `" CommandId="` + commandID + `">` + b64(text) + `</rsp:Stream>`
}

func receiveAnswer(body string) string {
	return envelopeOpen + `<rsp:ReceiveResponse>` + body + `</rsp:ReceiveResponse>` + envelopeClose
}

// streamTag matches the start of a Stream element.
var streamTag = regexp.MustCompile(`<[A-Za-z]+:Stream[ \t/>]`)

// TestLiftStreamsReadsAsTheLibraryDoes: for the answers Windows and the
// simulator send, the streams lifted out and what the library reads from
// the rest are exactly what the library reads from the whole answer.
func TestLiftStreamsReadsAsTheLibraryDoes(t *testing.T) {
	lines := "{\"t\":\"device\",\"DeviceId\":\"ApplF17XK2\"}\r\n{\"t\":\"end\"}\r\n"
	wrapped := b64(strings.Repeat(lines, 40))
	var folded strings.Builder
	for len(wrapped) > 76 {
		folded.WriteString(wrapped[:76] + "\r\n")
		wrapped = wrapped[76:]
	}
	folded.WriteString(wrapped)
	cases := []struct {
		name, answer     string
		stdout, stderr   string
		finished         bool
		lifted, leftOver int // stream elements lifted, and left to the library
	}{
		{
			name:   "output while running",
			answer: receiveAnswer(stream("stdout", lines) + stateRunning),
			stdout: lines, lifted: 1,
		},
		{
			name: "last answer, with stderr and empty end markers",
			answer: receiveAnswer(stream("stdout", lines) +
				`<rsp:Stream Name="stdout" CommandId="` + commandID + `" End="true"></rsp:Stream>` +
				stream("stderr", "#< CLIXML\r\n") +
				`<rsp:Stream Name="stderr" CommandId="` + commandID + `" End="true"/>` + stateDone),
			stdout: lines, stderr: "#< CLIXML\r\n", finished: true, lifted: 4,
		},
		{
			name:   "several chunks, an XML declaration, stderr first",
			answer: `<?xml version="1.0" encoding="utf-8"?>` + receiveAnswer(stream("stderr", "warn\n")+stream("stdout", "one\n")+stream("stdout", "two\n")+stateRunning),
			stdout: "one\ntwo\n", stderr: "warn\n", lifted: 3,
		},
		{
			name:   "base64 folded over lines",
			answer: receiveAnswer(`<rsp:Stream Name="stdout" CommandId="` + commandID + `">` + folded.String() + `</rsp:Stream>` + stateRunning),
			stdout: strings.Repeat(lines, 40), lifted: 1,
		},
		{
			name: "attributes in single quotes, spaces around =, another prefix",
			answer: `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>` +
				`<sh:ReceiveResponse xmlns:sh="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">` +
				`<sh:Stream CommandId = '` + commandID + `'  Name='stdout' >` + b64("x") + `</sh:Stream >` +
				`</sh:ReceiveResponse></env:Body></env:Envelope>`,
			stdout: "x", lifted: 1,
		},
		{
			name: "a Stream of another namespace or name is the library's",
			answer: receiveAnswer(`<x:Stream xmlns:x="urn:other" Name="stdout">` + b64("not output") + `</x:Stream>` +
				`<rsp:Stream Name="stdin">` + b64("nor this") + `</rsp:Stream>` + stream("stdout", "output") + stateRunning),
			stdout: "output", lifted: 1, leftOver: 2,
		},
		{
			name:   "rsp bound elsewhere in an inner scope",
			answer: receiveAnswer(`<q xmlns:rsp="urn:other"><rsp:Stream Name="stdout">` + b64("not output") + `</rsp:Stream></q>` + stream("stdout", "output") + stateRunning),
			stdout: "output", lifted: 1, leftOver: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := readByLibrary(c.answer)
			if want.failed || want.stdout != c.stdout || want.stderr != c.stderr || want.finished != c.finished {
				t.Fatalf("the library reads %+v: the case is wrong", want)
			}
			var buf streamBuffer
			rest, ok := liftStreams([]byte(c.answer), &buf)
			if !ok {
				t.Fatal("answer not lifted")
			}
			got := readByLibrary(rest)
			if got.failed || got.stdout != "" || got.stderr != "" {
				t.Fatalf("the library reads the rest as %+v; want no output and no error", got)
			}
			if string(buf.stdout) != c.stdout || string(buf.stderr) != c.stderr {
				t.Errorf("lifted stdout %q stderr %q, want %q and %q", buf.stdout, buf.stderr, c.stdout, c.stderr)
			}
			if got.finished != want.finished || got.exitCode != want.exitCode {
				t.Errorf("rest: finished %v exit %d, want %v %d", got.finished, got.exitCode, want.finished, want.exitCode)
			}
			if n := len(streamTag.FindAllString(c.answer, -1)) - len(streamTag.FindAllString(rest, -1)); n != c.lifted {
				t.Errorf("%d stream elements lifted, want %d", n, c.lifted)
			}
			if n := len(streamTag.FindAllString(rest, -1)); n != c.leftOver {
				t.Errorf("%d stream elements left, want %d", n, c.leftOver)
			}
		})
	}
}

// TestLiftStreamsLeavesWhatItCannotVouchFor: an answer the reader cannot
// be sure to read as the library does goes to the library whole.
func TestLiftStreamsLeavesWhatItCannotVouchFor(t *testing.T) {
	out := stream("stdout", "output")
	cases := map[string]string{
		"comment":               receiveAnswer(`<!-- note -->` + out + stateRunning),
		"CDATA in a stream":     receiveAnswer(`<rsp:Stream Name="stdout"><![CDATA[` + b64("x") + `]]></rsp:Stream>` + stateRunning),
		"processing instr.":     receiveAnswer(`<?pi x?>` + out + stateRunning),
		"UTF-16 declaration":    `<?xml version="1.0" encoding="UTF-16"?>` + receiveAnswer(out+stateRunning),
		"shell as default ns":   `<Envelope xmlns="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">` + out + `</Envelope>`,
		"space in base64":       receiveAnswer(`<rsp:Stream Name="stdout">` + b64("abc") + ` ` + b64("def") + `</rsp:Stream>` + stateRunning),
		"reference in base64":   receiveAnswer(`<rsp:Stream Name="stdout">&#65;AAA</rsp:Stream>` + stateRunning),
		"reference in Name":     receiveAnswer(`<rsp:Stream Name="&#115;tdout">` + b64("x") + `</rsp:Stream>` + stateRunning),
		"bad base64":            receiveAnswer(`<rsp:Stream Name="stdout">QQ==QQ==</rsp:Stream>` + stateRunning),
		"element in a stream":   receiveAnswer(`<rsp:Stream Name="stdout"><b/></rsp:Stream>` + stateRunning),
		"mismatched end tag":    strings.Replace(receiveAnswer(out+stateRunning), "</rsp:ReceiveResponse>", "</rsp:Receive>", 1),
		"wrong end tag":         receiveAnswer(`<rsp:Stream Name="stdout">` + b64("x") + `</rsp:Streams>` + stateRunning),
		"namespace on a stream": receiveAnswer(`<rsp:Stream xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" Name="stdout">` + b64("x") + `</rsp:Stream>` + stateRunning),
		"duplicate attribute":   receiveAnswer(`<rsp:Stream Name="stdout" Name="stderr">` + b64("x") + `</rsp:Stream>` + stateRunning),
		"two roots":             receiveAnswer(stateRunning) + receiveAnswer(out),
		"unclosed element":      strings.TrimSuffix(receiveAnswer(out+stateRunning), envelopeClose),
		"cut off":               receiveAnswer(out)[:len(envelopeOpen)+40],
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			var buf streamBuffer
			if rest, ok := liftStreams([]byte(answer), &buf); ok {
				t.Errorf("lifted %q and %q, leaving %s", buf.stdout, buf.stderr, rest)
			}
		})
	}
}

// TestDeliverLeavesTheRestOfACommandToTheLibrary: once one answer goes to
// the library whole, so do the command's later ones, which the transport
// could read itself, so that no lifted output overtakes the library's.
func TestDeliverLeavesTheRestOfACommandToTheLibrary(t *testing.T) {
	o := newCommandOutput()
	defer o.close()
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(o.stdoutR)
		got <- string(b)
	}()
	first := receiveAnswer(stream("stdout", "one ") + stateRunning)
	if rest := o.deliver([]byte(first)); strings.Contains(rest, "Stream") {
		t.Fatalf("the first answer was not lifted: %s", rest)
	}
	odd := receiveAnswer(`<!-- note -->` + stream("stdout", "two ") + stateRunning)
	if rest := o.deliver([]byte(odd)); rest != odd {
		t.Fatalf("an answer with a comment was changed: %s", rest)
	}
	plain := receiveAnswer(stream("stdout", "three") + stateDone)
	if rest := o.deliver([]byte(plain)); rest != plain {
		t.Errorf("an answer after one left to the library was lifted: %s", rest)
	}
	// The library would write "two three" to its own pipe; here nothing
	// does, and the lifted output is the first answer's alone.
	o.follow(strings.NewReader(""), strings.NewReader(""))
	if s := <-got; s != "one " {
		t.Errorf("lifted output %q, want %q", s, "one ")
	}
}

// FuzzLiftStreams: whatever the answer, either it goes to the library
// whole, or the lifted streams and the library's reading of the rest are
// exactly the library's reading of the whole answer.
func FuzzLiftStreams(f *testing.F) {
	f.Add(receiveAnswer(stream("stdout", "a\r\nb\r\n") + stream("stderr", "c") + stateDone))
	f.Add(receiveAnswer(`<rsp:Stream Name="stdout" CommandId="x" End="true"/>` + stateRunning))
	f.Add(`<?xml version="1.0"?>` + receiveAnswer(stream("stdout", "x")+stateRunning))
	f.Add(receiveAnswer(`<q xmlns:rsp="urn:other"><rsp:Stream Name="stdout">QQ==</rsp:Stream></q>` + stateRunning))
	f.Add(`<a xmlns:r="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><r:Stream Name='stderr'>QUJD</r:Stream></a>`)
	f.Fuzz(func(t *testing.T, answer string) {
		var buf streamBuffer
		rest, ok := liftStreams([]byte(answer), &buf)
		if !ok {
			return
		}
		whole, left := readByLibrary(answer), readByLibrary(rest)
		if whole.failed != left.failed {
			t.Fatalf("the library fails on the whole answer: %v, on the rest: %v\nanswer: %q\nrest: %q", whole.failed, left.failed, answer, rest)
		}
		if whole.failed {
			return
		}
		got := libraryRead{
			stdout: string(buf.stdout) + left.stdout, stderr: string(buf.stderr) + left.stderr,
			finished: left.finished, exitCode: left.exitCode,
		}
		if got != whole {
			t.Fatalf("lifted and read %+v, the library reads %+v\nanswer: %q", got, whole, answer)
		}
		if left.stdout != "" || left.stderr != "" {
			t.Fatalf("output left for the library: %+v\nanswer: %q", left, answer)
		}
	})
}

func BenchmarkReceiveAnswer(b *testing.B) {
	line := `{"t":"device","Identity":"contoso.com/Users/Anna/ExchangeActiveSyncDevices/iPhone§ApplF17XK2","DeviceId":"ApplF17XK2","DeviceType":"iPhone"}` + "\r\n"
	var out strings.Builder
	for out.Len() < 110_000 {
		out.WriteString(line)
	}
	answer := receiveAnswer(stream("stdout", out.String()) + stateRunning)
	b.Run("library", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		b.ReportAllocs()
		for b.Loop() {
			if r := readByLibrary(answer); r.failed {
				b.Fatal("failed")
			}
		}
	})
	b.Run("lifted", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		b.ReportAllocs()
		var buf streamBuffer
		raw := []byte(answer)
		for b.Loop() {
			rest, ok := liftStreams(raw, &buf)
			if !ok {
				b.Fatal("not lifted")
			}
			if r := readByLibrary(rest); r.failed {
				b.Fatal("failed")
			}
		}
	})
}
