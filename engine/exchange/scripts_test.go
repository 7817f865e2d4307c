package exchange

import (
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"easgate/engine/sim/winrm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestScriptsFitTheCommandLine(t *testing.T) {
	for _, s := range Scripts() {
		t.Run(s.Name, func(t *testing.T) {
			if n := utf8.RuneCountInString(s.Text); n > MaxScriptLength {
				t.Errorf("%d characters, want at most %d", n, MaxScriptLength)
			}
			if n := len(commandLine(s)); n > winrm.MaxCommandLine {
				t.Errorf("command line of %d characters, cmd.exe takes %d", n, winrm.MaxCommandLine)
			}
			for i, r := range s.Text {
				if r > 0x7e || (r < 0x20 && r != '\n') {
					t.Errorf("character %q at %d: scripts are plain ASCII", r, i)
				}
			}
			if first, _, _ := strings.Cut(s.Text, "\n"); first != "# easgate-script: "+s.Name {
				t.Errorf("first line %q, want the marker", first)
			}
			t.Logf("%s: %d characters, command line %d", s.Name, len(s.Text), len(commandLine(s)))
		})
	}
}

// coreCommands are the PowerShell commands the scripts use besides
// Exchange's.
var coreCommands = []string{"ConvertFrom-Json", "ConvertTo-Json", "ConvertTo-SecureString", "ForEach-Object",
	"Where-Object", "New-Object", "New-PSSession", "Import-PSSession", "Remove-PSSession", "Add-PSSnapin", "Out-Null", "Get-Command"}

func TestScriptsCallOnlyTheListedCmdlets(t *testing.T) {
	re := regexp.MustCompile(`\b[A-Z][a-zA-Z]+-[A-Z][A-Za-z]+\b`)
	used := map[string]bool{}
	for _, s := range Scripts() {
		for _, w := range re.FindAllString(s.Text, -1) {
			if !slices.Contains(coreCommands, w) {
				used[w] = true
			}
		}
	}
	for w := range used {
		if !slices.Contains(Cmdlets(), w) {
			t.Errorf("a script calls %s, which Cmdlets() does not list (the session would not import it)", w)
		}
	}
	for _, c := range Cmdlets() {
		if !used[c] {
			t.Errorf("Cmdlets() lists %s, which no script calls", c)
		}
	}
}

func TestScriptsTakeDataOnlyFromStdin(t *testing.T) {
	for _, s := range Scripts() {
		lower := strings.ToLower(s.Text)
		for _, banned := range []string{"invoke-expression", "iex ", "[scriptblock]::create", "$($p", "&$p", "& $p", ".invoke("} {
			if strings.Contains(lower, banned) {
				t.Errorf("%s contains %q: payload data must never become code", s.Name, banned)
			}
		}
		// A script fed its work while it runs reads only the payload's
		// line first: reading to the end would wait for a stdin that ends
		// only after its results came back.
		read := "[Console]::In.ReadToEnd()|ConvertFrom-Json"
		if s.Name == scriptInventory2 {
			read = "[Console]::In.ReadLine()|ConvertFrom-Json"
		}
		if !strings.Contains(s.Text, read) {
			t.Errorf("%s does not read its payload from stdin with %s", s.Name, read)
		}
		if s.Name == scriptInventory2 && strings.Contains(s.Text, "ReadToEnd") {
			t.Errorf("%s reads stdin to its end: its work lines would never be answered", s.Name)
		}
		if !strings.Contains(s.Text, "}finally{if($r){Remove-PSSession $r}}") {
			t.Errorf("%s does not close its Exchange session", s.Name)
		}
	}
}

// TestScriptsGolden pins the scripts' exact text, the adapter's wire
// format: a change shows up in review. Run with -update to accept one.
func TestScriptsGolden(t *testing.T) {
	got, err := json.MarshalIndent(Scripts(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/scripts.golden.json"
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != string(got) {
		t.Errorf("scripts differ from %s; run go test -update if the change is meant", golden)
	}
}

// TestRBACScriptGrantsExactlyTheScriptsCmdlets keeps the role the RBAC
// script creates in step with the cmdlets the scripts call.
func TestRBACScriptGrantsExactlyTheScriptsCmdlets(t *testing.T) {
	script := RBACScript(`CONTOSO\svc-easgate`)
	start := strings.Index(script, "$Cmdlets = @(")
	end := strings.Index(script[start:], ")")
	if start < 0 || end < 0 {
		t.Fatalf("no $Cmdlets list in:\n%s", script)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`'([A-Za-z]+-[A-Za-z]+)'`).FindAllStringSubmatch(script[start:start+end], -1) {
		listed = append(listed, m[1])
	}
	want := slices.Clone(Cmdlets())
	slices.Sort(want)
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("the role grants %v, the scripts call %v", listed, want)
	}
	for _, must := range []string{"New-ManagementRole -Name $role -Parent $parent", "Remove-ManagementRoleEntry", "New-RoleGroup -Name $Name -Roles $roles -Members $Member",
		`$Member = 'CONTOSO\svc-easgate'`} {
		if !strings.Contains(script, must) {
			t.Errorf("the script lacks %q", must)
		}
	}
}

func TestPSQuoteKeepsDataLiteral(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: `CONTOSO\svc`, want: `'CONTOSO\svc'`},
		{name: "quote", in: `o'brien`, want: `'o''brien'`},
		{name: "typographic quote", in: "o\u2019brien", want: "'o\u2019\u2019brien'"},
		{name: "expansion", in: `$(calc)"`, want: `'$(calc)"'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := psQuote(tt.in); got != tt.want {
				t.Errorf("psQuote(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
