package exchange

import (
	_ "embed"
	"encoding/base64"
	"unicode/utf16"
)

// Script is a PowerShell script the adapter sends, exactly as sent: a
// fixed text; its data travels separately on stdin.
type Script struct {
	Name string `json:"name"`
	Text string `json:"script"`
}

// The scripts' parts. Every script is its marker line, the bootstrap (read
// the JSON payload from stdin, define the output helpers, open the
// Exchange session), its body, and the finally block that closes the
// session.
var (
	//go:embed scripts/bootstrap.ps1
	bootstrapPS string
	//go:embed scripts/finally.ps1
	finallyPS string
	//go:embed scripts/inventory.ps1
	inventoryPS string
	//go:embed scripts/apply.ps1
	applyPS string
	//go:embed scripts/probe.ps1
	probePS string
)

// MaxScriptLength is the longest script text, in characters, that fits
// cmd.exe's 8,191-character command line once encoded as UTF-16LE and
// base64 behind the powershell.exe arguments.
const MaxScriptLength = 3000

// Script names; the marker line of each script carries its name.
const (
	scriptInventory = "inventory/1"
	scriptApply     = "apply/1"
	scriptProbe     = "probe/1"
)

var (
	inventoryScript = compose(scriptInventory, inventoryPS)
	applyScript     = compose(scriptApply, applyPS)
	probeScript     = compose(scriptProbe, probePS)
)

func compose(name, body string) Script {
	return Script{Name: name, Text: "# easgate-script: " + name + "\n" + bootstrapPS + body + finallyPS}
}

// Scripts returns every script the adapter can send.
func Scripts() []Script {
	return []Script{inventoryScript, applyScript, probeScript}
}

// exchangeCmdlets are the Exchange cmdlets the scripts call; the remote
// session imports exactly these.
var exchangeCmdlets = []string{
	"Get-ActiveSyncOrganizationSettings", "Get-ActiveSyncDeviceAccessRule", "Get-MobileDevice",
	"Get-MobileDeviceStatistics", "Get-CASMailbox", "Get-Mailbox", "Set-CASMailbox", "Get-ExchangeServer",
}

// Cmdlets returns the Exchange cmdlets the scripts call: what the service
// account's management role must grant.
func Cmdlets() []string { return append([]string(nil), exchangeCmdlets...) }

// powershellPrefix starts every command line the adapter runs.
const powershellPrefix = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "

// commandLine returns the command line that runs a script.
func commandLine(s Script) string {
	units := utf16.Encode([]rune(s.Text))
	raw := make([]byte, 2*len(units))
	for i, u := range units {
		raw[2*i], raw[2*i+1] = byte(u), byte(u>>8)
	}
	return powershellPrefix + base64.StdEncoding.EncodeToString(raw)
}
