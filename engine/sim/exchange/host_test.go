package exchange

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"easgate/engine/sim/org"
	"easgate/engine/sim/winrm"
)

func encodeScript(s string) string {
	units := utf16.Encode([]rune(s))
	raw := make([]byte, 2*len(units))
	for i, u := range units {
		raw[2*i], raw[2*i+1] = byte(u), byte(u>>8)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// runPS runs the host as `powershell.exe args…` with stdin, directly.
func runPS(t *testing.T, h *Host, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = h.Run(context.Background(), &winrm.Process{
		Host: "EX01", User: "u", Args: append([]string{"powershell.exe"}, args...),
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
	})
	return out.String(), errOut.String(), code
}

const snapinScript = `# easgate-script: inventory/1
$ErrorActionPreference='Stop';$ProgressPreference='SilentlyContinue'
$p=[Console]::In.ReadToEnd()|ConvertFrom-Json
Add-PSSnapin Microsoft.Exchange.Management.PowerShell.SnapIn
`

func TestPowerShellCommandLine(t *testing.T) {
	h := New(Config{Org: org.New("contoso.com", "t")})
	tests := []struct {
		name   string
		args   []string
		stderr string
		code   int
	}{
		{name: "bad base64", args: []string{"-NoProfile", "-EncodedCommand", "not!base64"},
			stderr: "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\r\n", code: exitBadArgs},
		{name: "missing value", args: []string{"-enc"},
			stderr: "Cannot process the command because of a missing parameter. A command must follow -EncodedCommand.\r\n", code: exitBadArgs},
		{name: "a plain -Command", args: []string{"-Command", "Get-Date"},
			stderr: "The simulated Exchange host runs only -EncodedCommand scripts.", code: 1},
		{name: "no marker", args: []string{"-ec", encodeScript("Get-Date")},
			stderr: "which carry an '# easgate-script: NAME/VERSION' line", code: 1},
		{name: "unknown cmdlet", args: []string{"-e", encodeScript("# easgate-script: probe/1\n$x = 1\n  Get-Frobnicator -All\n")},
			stderr: "Get-Frobnicator : The term 'Get-Frobnicator' is not recognized as the name of a cmdlet, function, script file, or ope", code: 1},
		{name: "Exchange cmdlet without a session", args: []string{"-EncodedCommand", encodeScript("# easgate-script: probe/1\nGet-MobileDevice\n")},
			stderr: "The term 'Get-MobileDevice' is not recognized", code: 1},
		{name: "unknown script", args: []string{"-EncodedCommand", encodeScript("# easgate-script: frob/1\n")},
			stderr: `does not know the script "frob/1"`, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runPS(t, h, "", tt.args...)
			want := encode(tt.stderr) // CLIXML
			if tt.code == exitBadArgs {
				want = tt.stderr // plain text, before the host starts
			}
			if code != tt.code || !strings.Contains(stderr, want) {
				t.Errorf("exit %d stderr %q; want %d and %q", code, stderr, tt.code, tt.stderr)
			}
		})
	}
	if h.Starts() != len(tests) {
		t.Errorf("starts = %d, want %d", h.Starts(), len(tests))
	}
}

func TestNotRecognizedPointsAtTheCommand(t *testing.T) {
	h := New(Config{Org: org.New("contoso.com", "t")})
	_, stderr, _ := runPS(t, h, "", "-EncodedCommand", encodeScript("# easgate-script: probe/1\n$x = 1\n  Get-Frobnicator -All\n"))
	for _, want := range []string{"At line:3 char:3_x000D__x000A_", "+   Get-Frobnicator -All_x000D__x000A_", "+   ~~~~~~~~~~~~~~~_x000D__x000A_",
		"ObjectNotFound: (Get-Frobnicator:String) [], CommandNotFoundException", "FullyQualifiedErrorId : CommandNotFoundException",
		`<S S="Error"> _x000D__x000A_</S></Objs>`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.HasPrefix(stderr, "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">") {
		t.Errorf("stderr does not start as CLIXML: %.80q", stderr)
	}
}

func TestGetMobileDeviceReturnsAThousandWithoutResultSize(t *testing.T) {
	o := org.Generate(org.Options{Users: 800, Seed: 3, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	h := New(Config{Org: o})
	tests := []struct {
		name    string
		call    string
		devices int
	}{
		{name: "default", call: "Get-MobileDevice|ForEach-Object{$_}", devices: 1000},
		{name: "unlimited", call: "Get-MobileDevice -ResultSize Unlimited|ForEach-Object{$_}", devices: o.Count().Partnerships},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runPS(t, h, `{"session":"snapin"}`, "-EncodedCommand", encodeScript(snapinScript+tt.call+"\n"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if n := strings.Count(stdout, `{"t":"device"`); n != tt.devices {
				t.Errorf("%d devices, want %d", n, tt.devices)
			}
			warned := strings.Contains(stderr, `<S S="warning">By default, only the first 1000 items are returned.`)
			if warned != (tt.devices == 1000) {
				t.Errorf("warning %v: %s", warned, stderr)
			}
		})
	}
}

func TestRemoteSessionNeedsTheRightEndpointAndCredential(t *testing.T) {
	script := `# easgate-script: probe/1
$p=[Console]::In.ReadToEnd()|ConvertFrom-Json
$r=New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $p.uri -Credential $k
Import-PSSession $r -CommandName $p.import|Out-Null
`
	h := New(Config{Org: org.New("contoso.com", "t"), Accounts: map[string]string{"svc": "pw"}, Denied: []string{"Get-ExchangeServer"}})
	tests := []struct {
		name, payload, stdout, stderr string
	}{
		{name: "ok", payload: `{"session":"remote","uri":"http://ex01.contoso.com/PowerShell/","user":"svc","password":"pw","import":["Get-MobileDevice","Get-ExchangeServer","Get-Nothing"]}`,
			stdout: `{"t":"probe","server":"EX01","ps":"5.1.17763.6414","exchange":null,"cmdlets":["Get-MobileDevice"]}`},
		{name: "wrong path", payload: `{"session":"remote","uri":"http://ex01.contoso.com/wsman","user":"svc","password":"pw"}`,
			stderr: "the requested HTTP URL was not available"},
		{name: "wrong password", payload: `{"session":"remote","uri":"http://ex01/PowerShell/","user":"svc","password":"nope"}`,
			stderr: "New-PSSession : [ex01] Connecting to remote server ex01 failed with the following error message : Access is denied."},
		{name: "not JSON", payload: `session=remote`, stderr: "ConvertFrom-Json : Invalid JSON primitive: session=remote."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, _ := runPS(t, h, tt.payload, "-EncodedCommand", encodeScript(script))
			if !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, encode(tt.stderr)) {
				t.Errorf("stdout %q\nstderr %q", stdout, stderr)
			}
			if strings.Contains(stderr, "pw") || strings.Contains(stderr, "nope") {
				t.Error("the password leaked into stderr")
			}
		})
	}
}

func TestApplyWarnsWhenNothingChanged(t *testing.T) {
	o := org.New("contoso.com", "t")
	o.AddUser(&org.User{ID: "1", DisplayName: "Anna", UPN: "anna@contoso.com", PrimarySMTP: "anna@contoso.com"})
	h := New(Config{Org: o})
	script := strings.Replace(snapinScript, "inventory/1", "apply/1", 1) + "Set-CASMailbox @a\n"
	payload := `{"session":"snapin","edits":[{"id":"e1","mailbox":"anna@contoso.com","block_add":["X1"]}]}`
	for round, warn := range []bool{false, true} {
		stdout, stderr, code := runPS(t, h, payload, "-EncodedCommand", encodeScript(script))
		if code != 0 || !strings.Contains(stdout, `{"t":"result","id":"e1","ok":true}`) {
			t.Fatalf("round %d: exit %d stdout %q stderr %q", round, code, stdout, stderr)
		}
		if got := strings.Contains(stderr, "no settings of 'contoso.com/Users/Anna' have been modified"); got != warn {
			t.Errorf("round %d: warning %v, want %v", round, got, warn)
		}
	}
}

func TestScan(t *testing.T) {
	script := `# Get-Comment is a comment
<# Get-Block
   is too #>
$a = 'Get-Single' + "Get-Double $(Get-Inner) ` + "`" + `"" ; $b.Get-Member
function Get-Mine { param($x) }
Get-Mine -Name x-y -Filter "a -eq 'b'"
$h = @"
Get-Here
"@
ForEach-Object{ Where-Object { $_ } }|Out-Null;yyyy-MM-dd
C:\Tools\Get-Path
`
	cmds, functions := scan(script)
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	want := "Get-Mine ForEach-Object Where-Object Out-Null"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("commands %q, want %q", got, want)
	}
	if !functions["get-mine"] {
		t.Errorf("functions %v", functions)
	}
	if cmds[0].line != 6 || cmds[0].col != 1 || cmds[2].col != 17 {
		t.Errorf("positions %+v", cmds)
	}
}

func TestCLIXMLEncoding(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a<b>&c", "a&lt;b&gt;&amp;c"},
		{"line\r\n", "line_x000D__x000A_"},
		{"about_Remote _x1234_", "about_Remote _x005F_x1234_"},
		{"tab\tnul\x00", "tab_x0009_nul_x0000_"},
		{"😀é", "😀é"},
	}
	for _, tt := range tests {
		if got := encode(tt.in); got != tt.want {
			t.Errorf("encode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzRun feeds arbitrary encoded commands and stdin to powershell.exe: it
// must never panic and always exit.
func FuzzRun(f *testing.F) {
	f.Add(encodeScript(snapinScript+"Get-MobileDevice -ResultSize Unlimited\n"), `{"session":"snapin","stats":true}`)
	f.Add(encodeScript("# easgate-script: apply/1\n<# unclosed"), `{"edits":[{"id":"e1","mailbox":"","block_add":[""]}]}`)
	f.Add("!!!", "")
	f.Add(encodeScript("@\"\n`\"'"), "null")
	o := org.Generate(org.Options{Users: 5, Seed: 1, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	h := New(Config{Org: o})
	f.Fuzz(func(t *testing.T, encoded, stdin string) {
		var out, errOut bytes.Buffer
		h.Run(context.Background(), &winrm.Process{Host: "EX01", Args: []string{"powershell.exe", "-EncodedCommand", encoded},
			Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut})
	})
}

func TestCostModelTakesRealTime(t *testing.T) {
	o := org.Generate(org.Options{Users: 40, Seed: 2, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	devices := o.Count().Partnerships
	cost := &Cost{ProcessStart: 30 * time.Millisecond, Snapin: 20 * time.Millisecond, PerDevice: time.Millisecond, PerStatistic: time.Millisecond, Scale: 2}
	h := New(Config{Org: o, Cost: cost})
	start := time.Now()
	stdout, stderr, code := runPS(t, h, `{"session":"snapin","stats":true}`, "-EncodedCommand",
		encodeScript(snapinScript+"Get-MobileDevice -ResultSize Unlimited|ForEach-Object{$_}\n"))
	took := time.Since(start)
	if code != 0 || !strings.Contains(stdout, `{"t":"end"`) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := 2 * (50*time.Millisecond + time.Duration(2*devices)*time.Millisecond) // scaled: start, snap-in, a device line and a stat each
	if took < want || h.Counters().Busy < want-10*time.Millisecond {
		t.Errorf("took %v, slept %v; want at least %v", took, h.Counters().Busy, want)
	}
	c := h.Counters()
	if c.Starts != 1 || c.Sessions != 1 || c.Scripts["inventory/1"] != 1 {
		t.Errorf("counters %+v", c)
	}
}

func TestCostModelStopsWhenTerminated(t *testing.T) {
	o := org.Generate(org.Options{Users: 40, Seed: 2, Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	h := New(Config{Org: o, Cost: &Cost{PerDevice: time.Second, Scale: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	start := time.Now()
	code := h.Run(ctx, &winrm.Process{Host: "EX01", Args: []string{"powershell.exe", "-EncodedCommand", encodeScript(snapinScript + "Get-MobileDevice -ResultSize Unlimited\n")},
		Stdin: strings.NewReader(`{"session":"snapin"}`), Stdout: &out, Stderr: &errOut})
	if code == 0 || time.Since(start) > 2*time.Second {
		t.Errorf("exit %d after %v: want a terminated process, at once", code, time.Since(start))
	}
}
