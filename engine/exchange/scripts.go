package exchange

import (
	_ "embed"
	"encoding/base64"
	"strings"
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
	//go:embed scripts/inventory2.ps1
	inventory2PS string
	//go:embed scripts/apply.ps1
	applyPS string
	//go:embed scripts/probe.ps1
	probePS string
	//go:embed scripts/servers.ps1
	serversPS string
	//go:embed scripts/remove.ps1
	removePS string
	//go:embed scripts/wipe.ps1
	wipePS string
	//go:embed scripts/stats.ps1
	statsPS string
	//go:embed scripts/orgdefault.ps1
	orgDefaultPS string
	//go:embed scripts/rule.ps1
	rulePS string
)

// MaxScriptLength is the longest script text, in characters, that fits
// cmd.exe's 8,191-character command line once encoded as UTF-16LE and
// base64 behind the powershell.exe arguments.
const MaxScriptLength = 3000

// Script names; the marker line of each script carries its name.
const (
	scriptInventory  = "inventory/1"
	scriptInventory2 = "inventory/2"
	scriptApply      = "apply/1"
	scriptProbe      = "probe/1"
	scriptServers    = "servers/1"
	scriptRemove     = "remove/1"
	scriptWipe       = "wipe/1"
	scriptStats      = "stats/1"
	scriptOrgDefault = "orgdefault/1"
	scriptRule       = "rule/1"
)

var (
	inventoryScript  = compose(scriptInventory, inventoryPS)
	inventory2Script = composeFed(scriptInventory2, inventory2PS)
	applyScript      = compose(scriptApply, applyPS)
	probeScript      = compose(scriptProbe, probePS)
	serversScript    = compose(scriptServers, serversPS)
	removeScript     = compose(scriptRemove, removePS)
	wipeScript       = compose(scriptWipe, wipePS)
	statsScript      = compose(scriptStats, statsPS)
	orgDefaultScript = compose(scriptOrgDefault, orgDefaultPS)
	ruleScript       = compose(scriptRule, rulePS)
)

func compose(name, body string) Script {
	return Script{Name: name, Text: "# easgate-script: " + name + "\n" + bootstrapPS + body + finallyPS}
}

// readPayload is how the bootstrap reads its payload: all of stdin.
const readPayload = "[Console]::In.ReadToEnd()"

// composeFed composes a script that is fed its work while it runs: the
// bootstrap reads only the payload's line, and the body reads the rest
// of stdin a line at a time.
func composeFed(name, body string) Script {
	s := compose(name, body)
	s.Text = strings.Replace(s.Text, readPayload, "[Console]::In.ReadLine()", 1)
	return s
}

// Scripts returns every script the adapter can send.
func Scripts() []Script {
	return []Script{inventoryScript, inventory2Script, applyScript, probeScript, serversScript, removeScript, wipeScript,
		statsScript, orgDefaultScript, ruleScript}
}

// exchangeCmdlets are the Exchange cmdlets the scripts call; the remote
// session imports exactly these.
var exchangeCmdlets = []string{
	"Get-ActiveSyncOrganizationSettings", "Set-ActiveSyncOrganizationSettings",
	"Get-ActiveSyncDeviceAccessRule", "New-ActiveSyncDeviceAccessRule", "Set-ActiveSyncDeviceAccessRule", "Remove-ActiveSyncDeviceAccessRule",
	"Get-MobileDevice", "Get-MobileDeviceStatistics", "Remove-MobileDevice", "Clear-MobileDevice",
	"Get-CASMailbox", "Set-CASMailbox", "Get-Mailbox", "Get-ExchangeServer",
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
