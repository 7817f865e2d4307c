package exchange

import (
	"fmt"
	"strings"
)

// verbs are PowerShell's approved verbs (Get-Verb): a word "Verb-Noun"
// with one of them is a command name.
var verbs = words(`Add Approve Assert Backup Block Build Checkpoint Clear Close Compare Complete Compress Confirm
Connect Convert ConvertFrom ConvertTo Copy Debug Deny Deploy Disable Disconnect Dismount Edit Enable Enter Exit
Expand Export Find ForEach Format Get Grant Group Hide Import Initialize Install Invoke Join Limit Lock Measure
Merge Mount Move New Open Optimize Out Ping Pop Protect Publish Push Read Receive Redo Register Remove Rename
Repair Request Reset Resize Resolve Restart Restore Resume Revoke Save Search Select Send Set Show Skip Sort Split
Start Step Stop Submit Suspend Switch Sync Tee Test Trace Unblock Undo Uninstall Unlock Unprotect Unpublish
Unregister Update Use Wait Watch Where Write`)

// coreCmdlets are the Windows PowerShell 5.1 commands a script may use.
var coreCmdlets = words(`Add-Member Add-PSSnapin Add-Type ConvertFrom-Json ConvertFrom-SecureString ConvertTo-Csv
ConvertTo-Json ConvertTo-SecureString Export-Csv ForEach-Object Format-List Format-Table Get-ChildItem Get-Command
Get-Content Get-Credential Get-Date Get-Host Get-Item Get-Member Get-Module Get-PSSession Get-PSSnapin Get-Variable
Group-Object Import-Csv Import-Module Import-PSSession Invoke-Command Join-Path Measure-Object New-Object
New-PSSession New-PSSessionOption Out-File Out-Null Out-String Remove-PSSession Remove-Variable Select-Object
Set-StrictMode Set-Variable Sort-Object Split-Path Start-Sleep Test-Path Where-Object Write-Error Write-Host
Write-Output Write-Verbose Write-Warning`)

// exchangeCmdlets are the Exchange Management Shell cmdlets the simulator
// knows; a session has them only through New-PSSession/Import-PSSession or
// the snap-in.
var exchangeCmdlets = words(`Add-ManagementRoleEntry Clear-ActiveSyncDevice Clear-MobileDevice Get-ActiveSyncDevice
Get-ActiveSyncDeviceAccessRule Get-ActiveSyncDeviceStatistics Get-ActiveSyncMailboxPolicy
Get-ActiveSyncOrganizationSettings Get-CASMailbox Get-ClientAccessService Get-ExchangeServer Get-Mailbox
Get-ManagementRole Get-ManagementRoleEntry Get-MobileDevice Get-MobileDeviceMailboxPolicy
Get-MobileDeviceStatistics Get-OrganizationConfig Get-Recipient Get-User New-ActiveSyncDeviceAccessRule
New-ManagementRole New-ManagementRoleAssignment New-RoleGroup Remove-ActiveSyncDevice
Remove-ActiveSyncDeviceAccessRule Remove-ManagementRoleEntry Remove-MobileDevice Set-ActiveSyncDeviceAccessRule
Set-ActiveSyncOrganizationSettings Set-CASMailbox`)

func words(s string) map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(s) {
		m[strings.ToLower(w)] = w
	}
	return m
}

// cmdToken is a command name in a script, outside strings and comments.
type cmdToken struct {
	name      string
	line, col int // 1-based
}

// scan finds the command names a script calls and the functions it
// defines. It knows enough of PowerShell's lexer to skip comments, quoted
// strings and here-strings, variables, parameters and member names.
func scan(script string) (cmds []cmdToken, functions map[string]bool) {
	functions = map[string]bool{}
	line, col := 1, 1
	prevWord := ""
	advance := func(n int, i *int) {
		for k := 0; k < n && *i < len(script); k++ {
			if script[*i] == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			*i++
		}
	}
	for i := 0; i < len(script); {
		c := script[i]
		switch {
		case c == '#':
			for i < len(script) && script[i] != '\n' {
				advance(1, &i)
			}
		case c == '<' && i+1 < len(script) && script[i+1] == '#':
			advance(2, &i)
			for i < len(script) && !strings.HasPrefix(script[i:], "#>") {
				advance(1, &i)
			}
			advance(2, &i)
		case c == '@' && i+2 < len(script) && (script[i+1] == '"' || script[i+1] == '\'') && (script[i+2] == '\n' || script[i+2] == '\r'):
			end := "\n" + string(script[i+1]) + "@"
			advance(2, &i)
			for i < len(script) && !strings.HasPrefix(script[i:], end) {
				advance(1, &i)
			}
			advance(len(end), &i)
		case c == '\'':
			advance(1, &i)
			for i < len(script) {
				if script[i] == '\'' {
					if i+1 < len(script) && script[i+1] == '\'' {
						advance(2, &i)
						continue
					}
					break
				}
				advance(1, &i)
			}
			advance(1, &i)
		case c == '"':
			advance(1, &i)
			for i < len(script) {
				if script[i] == '`' {
					advance(2, &i)
					continue
				}
				if script[i] == '"' {
					if i+1 < len(script) && script[i+1] == '"' {
						advance(2, &i)
						continue
					}
					break
				}
				advance(1, &i)
			}
			advance(1, &i)
		case c == '`':
			advance(2, &i)
		case isLetter(c) && (i == 0 || !isWordish(script[i-1])):
			start, l, co := i, line, col
			for i < len(script) && (isLetter(script[i]) || isDigit(script[i]) || script[i] == '-' || script[i] == '_') {
				advance(1, &i)
			}
			w := script[start:i]
			if strings.EqualFold(prevWord, "function") {
				functions[strings.ToLower(w)] = true
			} else if isCommandName(w) {
				cmds = append(cmds, cmdToken{name: w, line: l, col: co})
			}
			prevWord = w
			continue
		default:
			advance(1, &i)
		}
		if c != ' ' && c != '\t' {
			prevWord = ""
		}
	}
	return cmds, functions
}

// isCommandName reports whether w has the form Verb-Noun with an approved verb.
func isCommandName(w string) bool {
	verb, noun, ok := strings.Cut(w, "-")
	if !ok || noun == "" || strings.Contains(noun, "-") || !isLetter(noun[0]) {
		return false
	}
	_, known := verbs[strings.ToLower(verb)]
	return known
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// isWordish reports whether c continues a word, variable, member,
// parameter or path, so that a letter after it does not start a command.
func isWordish(c byte) bool {
	return isLetter(c) || isDigit(c) || strings.IndexByte(`_$.-:\/`, c) >= 0 || c >= 0x80
}

// sourceLine returns a script's 1-based line n.
func sourceLine(script string, n int) string {
	lines := strings.Split(script, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimRight(lines[n-1], "\r")
}

// notRecognized is PowerShell's error for a command no module, snap-in or
// session provides.
func notRecognized(script string, t cmdToken) *psError {
	return &psError{
		command: t.name,
		message: fmt.Sprintf("The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program. "+
			"Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", t.name),
		line: t.line, char: t.col, width: len(t.name), source: sourceLine(script, t.line),
		category: fmt.Sprintf("ObjectNotFound: (%s:String) [], CommandNotFoundException", t.name),
		errorID:  "CommandNotFoundException",
	}
}

// firstUnknown returns the first command of the script that is neither a
// PowerShell cmdlet, a function the script defines, nor one of the
// Exchange cmdlets the session has.
func firstUnknown(script string, cmds []cmdToken, functions map[string]bool, exchange map[string]bool) *psError {
	for _, t := range cmds {
		key := strings.ToLower(t.name)
		if _, ok := coreCmdlets[key]; ok || functions[key] || exchange[key] {
			continue
		}
		return notRecognized(script, t)
	}
	return nil
}

// calls returns the tokens that call a command, any case.
func calls(cmds []cmdToken, name string) []cmdToken {
	var out []cmdToken
	for _, t := range cmds {
		if strings.EqualFold(t.name, name) {
			out = append(out, t)
		}
	}
	return out
}

// callHas reports whether some call of the command has text after it on
// its line (case-insensitive).
func callHas(script string, cmds []cmdToken, name, text string) bool {
	for _, t := range calls(cmds, name) {
		rest := sourceLine(script, t.line)
		if t.col-1 < len(rest) {
			rest = rest[t.col-1:]
		}
		if strings.Contains(strings.ToLower(rest), strings.ToLower(text)) {
			return true
		}
	}
	return false
}

// everyCallHas reports whether every call of the command has text after
// it on its line; true when there is no call.
func everyCallHas(script string, cmds []cmdToken, name, text string) bool {
	for _, t := range calls(cmds, name) {
		if !callHas(script, []cmdToken{t}, name, text) {
			return false
		}
	}
	return true
}
