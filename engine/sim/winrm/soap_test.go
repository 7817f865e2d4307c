package winrm

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "PT60S", want: time.Minute},
		{in: "PT60.000S", want: time.Minute},
		{in: "PT1.5S", want: 1500 * time.Millisecond},
		{in: "PT1M30S", want: 90 * time.Second},
		{in: "P0DT0H0M20S", want: 20 * time.Second},
		{in: "P1D", want: 24 * time.Hour},
		{in: "PT2H", want: 2 * time.Hour},
		{in: "60", bad: true},
		{in: "PT", bad: true},
		{in: "P1H", bad: true},
		{in: "PTS", bad: true},
		{in: "PT-5S", bad: true},
		{in: "PT5", bad: true},
		{in: "PT1.2.3S", bad: true},
		{in: "P99999999D", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if (err != nil) != tt.bad || got != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

// A request as masterzen/winrm builds it: namespaces on the envelope,
// the command line in CDATA.
const commandRequest = `<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">
  <env:Header>
    <a:To>http://127.0.0.1:5985/wsman</a:To>
    <w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize>
    <w:OperationTimeout>PT20S</w:OperationTimeout>
    <a:MessageID>uuid:1</a:MessageID>
    <a:Action mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command</a:Action>
    <w:SelectorSet><w:Selector Name="ShellId">SHELL-1</w:Selector></w:SelectorSet>
    <w:ResourceURI mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>
    <w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</w:Option></w:OptionSet>
  </env:Header>
  <env:Body><rsp:CommandLine><rsp:Command><![CDATA[echo a & b <c>]]></rsp:Command><rsp:Arguments><![CDATA[x "y"]]></rsp:Arguments></rsp:CommandLine></env:Body>
</env:Envelope>`

func TestParseRequest(t *testing.T) {
	req, err := parseRequest([]byte(commandRequest))
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Action != actionCommand || req.shellID() != "SHELL-1" || req.Header.ResourceURI != resourceCmd {
		t.Errorf("header %+v", req.Header)
	}
	if n, err := req.maxEnvelope(); n != 153600 || err != nil {
		t.Errorf("max envelope %d %v", n, err)
	}
	if d, err := req.operationTimeout(time.Minute); d != 20*time.Second || err != nil {
		t.Errorf("timeout %v %v", d, err)
	}
	cl := req.Body.CommandLine
	if cl == nil || cl.Command != "echo a & b <c>" || len(cl.Arguments) != 1 || cl.Arguments[0] != `x "y"` {
		t.Errorf("command line %+v", cl)
	}
}

func TestParseRequestRefusesGarbage(t *testing.T) {
	tests := []struct{ name, body string }{
		{name: "empty", body: ""},
		{name: "not xml", body: "hello"},
		{name: "other root", body: `<Envelope/>`},
		{name: "unclosed", body: `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>`},
		{name: "entity bomb", body: `<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">&b;</env:Envelope>`},
		{name: "deep nesting", body: `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">` + strings.Repeat("<x>", 20000) + `</env:Envelope>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseRequest([]byte(tt.body)); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`powershell.exe -NoProfile -EncodedCommand QQA=`, []string{"powershell.exe", "-NoProfile", "-EncodedCommand", "QQA="}},
		{`"C:\Program Files\x.exe"  a   b`, []string{`C:\Program Files\x.exe`, "a", "b"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`a\\\"b c`, []string{`a\"b`, "c"}},
		{`a\\"b c" d`, []string{`a\b c`, "d"}},
		{`a\b`, []string{`a\b`}},
		{`"a""b"`, []string{`a"b`}},
		{`  `, nil},
	}
	for _, tt := range tests {
		got := splitArgs(tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReceiveBudgetFitsTheEnvelope(t *testing.T) {
	for _, maxEnv := range []int{8192, 51200, 153600, 512000} {
		id := newUUID("")
		budget := receiveBudget(maxEnv, id)
		out := output{stdout: make([]byte, budget/2), stderr: make([]byte, budget-budget/2), done: true, exitCode: -1073741510}
		body := envelope(nsShell+"/ReceiveResponse", "uuid:"+strings.Repeat("F", 200), receiveBody(id, out))
		if len(body) > maxEnv || len(body) < maxEnv*9/10 {
			t.Errorf("MaxEnvelopeSize %d: answer of %d bytes", maxEnv, len(body))
		}
	}
}

// FuzzParseRequest feeds arbitrary bodies to the request parser: it must
// never panic.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(commandRequest))
	f.Add([]byte(`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header><w:MaxEnvelopeSize xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">-1</w:MaxEnvelopeSize></env:Header></env:Envelope>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseRequest(body)
		if err != nil {
			return
		}
		_ = req.shellID()
		_, _ = req.maxEnvelope()
		_, _ = req.operationTimeout(time.Minute)
	})
}
